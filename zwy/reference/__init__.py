"""Reference data shipped with the package: the HJ 212-2017 Appendix B code table."""
