// Lists the mutants Stryker's own instrumenter makes of each file, for the lines asked for; reads one JSON request
// on stdin ({files: [{name, content, lines}]}) and writes one JSON answer. Only parses: the names carry no folder
// and the working directory is empty, so no configuration of the learner's is found, let alone run.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

// The service's tools folder is the first argument (ES modules do not look in NODE_PATH).
const entry = join(process.argv[2], "node_modules", "@stryker-mutator", "instrumenter", "dist", "src", "index.js");
const { Instrumenter } = await import(pathToFileURL(entry).href);

const quiet = () => {};
const logger = {
  trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet, fatal: quiet,
  isTraceEnabled: () => false, isDebugEnabled: () => false, isInfoEnabled: () => false,
  isWarnEnabled: () => false, isErrorEnabled: () => false, isFatalEnabled: () => false,
};

function offset(starts, position) {
  return starts[position.line] + position.column;
}

async function mutantsOf(file) {
  const wanted = new Set(file.lines);
  const starts = [0];
  for (let index = 0; index < file.content.length; index++) {
    if (file.content[index] === "\n") starts.push(index + 1);
  }
  let result;
  try {
    result = await new Instrumenter(logger).instrument(
      [{ name: file.name, content: file.content, mutate: true }],
      { plugins: null, excludedMutations: [], ignorers: [], noHeader: true });
  } catch (error) {
    return { name: file.name, error: String(error).slice(0, 300), mutants: [] };
  }
  const mutants = [];
  for (const mutant of result.mutants) {
    const line = mutant.location.start.line + 1;
    if (!wanted.has(line)) continue;
    const start = offset(starts, mutant.location.start);
    const end = offset(starts, mutant.location.end);
    mutants.push({ line, operator: mutant.mutatorName, start, end,
                   before: file.content.slice(start, end), after: mutant.replacement });
  }
  return { name: file.name, mutants };
}

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input);
const answer = [];
for (const file of request.files) answer.push(await mutantsOf(file));
process.stdout.write(JSON.stringify({ files: answer }));
