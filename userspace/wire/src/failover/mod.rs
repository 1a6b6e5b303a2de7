//! RFC 8156 failover messages and their RFC 5460 §5.1 TCP framing.
