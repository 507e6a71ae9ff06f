// Reads the shell blocks and relative links out of the project's Markdown pages, for
// test/docs/commands.test.ts.

/** Options set by an HTML comment on the line just above a fence: `<!-- docs-test: background, wait-for "listening" -->`. */
export interface Directive {
  /** Start the block's single command in the background and keep it running until the page ends. */
  background: boolean;
  /** With background: wait until the command's output contains this text. */
  waitFor?: string;
  /** Run the block from the clone instead of the page's scratch directory (read-only commands only). */
  inClone: boolean;
  /** The exit status the block must end with (default 0), for commands documented as failing. */
  exit: number;
}

export interface CodeBlock {
  lang: 'sh' | 'bash' | 'console';
  /** 1-based line of the opening fence. */
  line: number;
  body: string;
  directive: Directive;
}

const FENCE = /^```(sh|bash|console)\s*$/;
const DIRECTIVE = /^<!--\s*docs-test:\s*(.*?)\s*-->\s*$/;

export function parseDirective(text: string): Directive {
  const d: Directive = { background: false, inClone: false, exit: 0 };
  const wait = /wait-for\s+"([^"]*)"/.exec(text);
  if (wait) d.waitFor = wait[1];
  const rest = text.replace(/wait-for\s+"[^"]*"/, '');
  for (const word of rest.split(/[\s,]+/).filter(Boolean)) {
    if (word === 'background') d.background = true;
    else if (word === 'in-clone') d.inClone = true;
    else if (/^exit=\d+$/.test(word)) d.exit = Number(word.slice(5));
    else throw new Error(`unknown docs-test option ${JSON.stringify(word)}`);
  }
  return d;
}

/** Every ```sh, ```bash and ```console block of a page, in order, with its directive. */
export function codeBlocks(markdown: string): CodeBlock[] {
  const lines = markdown.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]);
    if (!open) {
      if (/^```/.test(lines[i])) {
        // Skip any other fenced block whole, so a ``` inside it is not taken for an opening.
        for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++);
      }
      continue;
    }
    let j = i - 1;
    while (j >= 0 && lines[j].trim() === '') j--;
    const m = j >= 0 ? DIRECTIVE.exec(lines[j]) : null;
    const body: string[] = [];
    let k = i + 1;
    for (; k < lines.length && !/^```\s*$/.test(lines[k]); k++) body.push(lines[k]);
    blocks.push({ lang: open[1] as CodeBlock['lang'], line: i + 1, body: body.join('\n'), directive: parseDirective(m ? m[1] : '') });
    i = k;
  }
  return blocks;
}

/**
 * Logical lines of a shell snippet: backslash continuations joined, heredoc bodies kept apart
 * (flagged `heredoc`) so that substitutions never rewrite a file's contents.
 */
export function logicalLines(body: string): { text: string; heredoc: boolean }[] {
  const out: { text: string; heredoc: boolean }[] = [];
  const lines = body.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let text = lines[i];
    while (text.endsWith('\\') && i + 1 < lines.length) text = `${text.slice(0, -1)}${lines[++i].replace(/^\s+/, ' ')}`;
    out.push({ text, heredoc: false });
    const here = /<<-?\s*'?"?(\w+)'?"?/.exec(text);
    if (here) {
      for (i++; i < lines.length && lines[i].trim() !== here[1]; i++) out.push({ text: lines[i], heredoc: true });
      if (i < lines.length) out.push({ text: lines[i], heredoc: true });
    }
  }
  return out;
}

/** A ```console block: `$ ` lines are commands, the lines after one are output it must print. */
export function consoleCommands(body: string): { command: string; expected: string[] }[] {
  const out: { command: string; expected: string[] }[] = [];
  const lines = body.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('$ ')) {
      if (out.length && lines[i].trim()) out[out.length - 1].expected.push(lines[i].trim());
      continue;
    }
    let command = lines[i].slice(2);
    while (command.endsWith('\\') && i + 1 < lines.length) command = `${command.slice(0, -1)} ${lines[++i].trim()}`;
    out.push({ command, expected: [] });
  }
  return out;
}

/** Relative link targets of a page (`[text](target)`), without anchors; external and in-page links left out. */
export function relativeLinks(markdown: string): string[] {
  const withoutCode = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
  const out: string[] = [];
  for (const m of withoutCode.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1].split('#')[0];
    if (!target || /^[a-z]+:/i.test(target)) continue;
    out.push(target);
  }
  return out;
}
