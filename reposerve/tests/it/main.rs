//! Integration tests of the real `reposerve` binary.
