//! The assembler's integration tests: one binary, one module per area.

mod containerfile;
