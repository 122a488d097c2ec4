// `npm run build` / `prepare`: after tsc, make the CLI executable (see markBin in lib.mjs).
import { markBin } from './lib.mjs';

markBin();
