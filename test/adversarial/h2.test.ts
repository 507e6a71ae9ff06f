import { adversarialSuite } from './suite.js';

adversarialSuite('h2');
