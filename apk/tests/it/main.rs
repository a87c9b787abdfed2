//! Integration tests of the `apk` library against the reference fixtures made by the real
//! apk-tools 2.14 and abuild 3.17.

mod fixtures;
mod hostile;
mod index;
mod install;
mod installed;
mod never_panics;
mod package;
