import { adversarialSuite } from './suite.js';

adversarialSuite('node-http2');
