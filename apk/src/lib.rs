//! The Alpine apk formats, byte for byte.
//!
//! See `shared/docs/apk-format.md` for the formats themselves. This crate owns every byte
//! of an apk v2 package, an `APKINDEX.tar.gz` and an installed database, plus apk's
//! version ordering, dependency atoms and the one path-safety primitive every extraction
//! goes through. It never prints: progress goes through callers.
//!
//! - formats: [`tar`], [`gzip`], [`pkginfo`], [`package`], [`index`], [`installed`], [`checksum`]
//! - trust: [`keys`], [`sign`], [`signed`]
//! - semantics: [`version`], [`dep`], [`resolve`]
//! - filesystem: [`rootfs`] (path safety), [`atomic`] (crash-safe writes)
//! - installing: [`install`] (`apk add` / `apk del` into a root, natively)
//! - messages: [`cause`] (an error and its causes, each said once)
#![warn(missing_docs, clippy::print_stdout, clippy::print_stderr)]

pub mod atomic;
pub mod cause;
pub mod checksum;
pub mod dep;
pub mod glob;
pub mod gzip;
pub mod index;
pub mod install;
pub mod installed;
pub mod keys;
pub mod package;
pub mod pkginfo;
pub mod resolve;
pub mod rootfs;
pub mod sign;
pub mod signed;
pub mod tar;
pub mod version;

/// The UTC calendar time of a Unix time stamp (SOURCE_DATE_EPOCH and friends), for the
/// places that print dates: virtual package versions here, OCI `created` fields in
/// `assemble`. Times beyond the calendar's range (year 9999) are clamped to it.
pub fn utc(secs: u64) -> time::OffsetDateTime {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc())
}
