/**
 * Lengths the protocol's free-text params may have at most (docs/protocol.md, "Limits"). Every string
 * and array an auditor may send is bounded, so no call costs the engine more than its budget allows:
 * a 1 MB `application` or search text is refused by the params check, before any work.
 */
export const LIMITS = {
  /** An executable path (Linux PATH_MAX). */
  path: 4096,
  /** An IP address as text (the longest IPv6 form with a zone is under 64). */
  address: 64,
  /** An ISO 8601 instant. */
  instant: 64,
  /** logs.query `text`: a search needle. */
  searchText: 256,
  /** A user name (console users, Linux users). */
  userName: 64,
  /** A password. */
  password: 1024,
  /** policy.explain `hosts`: names, and characters per name (DNS). */
  hosts: 64,
  hostName: 253,
} as const;
