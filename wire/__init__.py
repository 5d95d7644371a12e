"""What the manager and the delegate both speak: the protocol's messages, the token-derived
JWT auth, and durations. Both sides import this package; neither imports the other."""
