//! The engine behind `assemble`. Not implemented yet: see the project's open issues.

pub mod containerfile;
