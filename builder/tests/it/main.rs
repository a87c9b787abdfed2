//! `apkbuild` driven as a user would: the real binary in temporary directories.

mod cli;
mod recipes;
mod reference;
