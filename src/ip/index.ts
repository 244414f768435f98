export type { IpAddress, IpRange, Parsed } from './address.js';
export {
  formatIp,
  formatIpv4,
  formatIpv6,
  formatRange,
  parseCidr,
  parseIp,
  parseIpRange,
  parseIpv4,
  parseIpv6,
  rangeContains,
} from './address.js';
export { parseHostName } from './host-name.js';
