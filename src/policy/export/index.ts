/** Export of a Warden policy to OpenSnitch rule files, ufw commands and firewalld commands (pure). */
export { type ExportedFile, type ExportResult, rangeToCidrs } from './common.js';
export { exportFirewalld, type FirewalldExport } from './firewalld.js';
export { exportOpenSnitch } from './opensnitch.js';
export { exportUfw, type UfwExport } from './ufw.js';
