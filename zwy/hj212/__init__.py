"""HJ 212-2017 (and HJ/T 212-2005) packet framing, CRC checks and parsing."""
