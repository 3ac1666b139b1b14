"""GhostV2 training: losses, data, the Lightning GAN module, callbacks and the run orchestration (SPEC §3)."""
