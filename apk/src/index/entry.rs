//! One package block of an `APKINDEX` (apk-format.md §3.2), shared with the installed
//! database, whose blocks start with exactly these lines (§4.1).

use std::cmp::Ordering;
use std::fmt::Write as _;

use crate::checksum::Checksum;
use crate::package::{Package, WrittenPackage};
use crate::pkginfo::PkgInfo;

/// A package as an index describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// `C:` identity (SHA-1 of the control member).
    pub checksum: Checksum,
    /// `P:`.
    pub name: String,
    /// `V:`.
    pub version: String,
    /// `A:` (the directory the file sits in; `noarch` rewritten to the repo arch).
    pub arch: String,
    /// `S:` size of the `.apk` file.
    pub file_size: u64,
    /// `I:` installed size.
    pub installed_size: u64,
    /// `T:`.
    pub description: String,
    /// `U:`.
    pub url: String,
    /// `L:`.
    pub license: String,
    /// `o:`.
    pub origin: String,
    /// `m:`.
    pub maintainer: String,
    /// `t:` build time.
    pub build_time: u64,
    /// `c:` commit.
    pub commit: String,
    /// `k:` provider priority.
    pub provider_priority: Option<u32>,
    /// `D:` dependency atoms.
    pub depends: Vec<String>,
    /// `p:` provides.
    pub provides: Vec<String>,
    /// `i:` install_if atoms.
    pub install_if: Vec<String>,
    /// Fields we do not interpret (lowercase letters of newer apk versions), in order.
    pub other: Vec<(char, String)>,
}

impl IndexEntry {
    /// The entry for a package whose `.PKGINFO` is `info`.
    pub fn from_pkginfo(info: &PkgInfo, checksum: Checksum, file_size: u64) -> Self {
        Self {
            checksum,
            name: info.pkgname.clone(),
            version: info.pkgver.clone(),
            arch: info.arch.clone(),
            file_size,
            installed_size: info.size,
            description: info.pkgdesc.clone(),
            url: info.url.clone(),
            license: info.license.clone(),
            origin: info.origin.clone(),
            maintainer: info.maintainer.clone(),
            build_time: info.builddate,
            commit: info.commit.clone(),
            provider_priority: info.provider_priority,
            // abuild drops the package's own name from its depends; apk index does not
            // rewrite them, so neither do we.
            depends: info.depends.clone(),
            provides: info.provides.clone(),
            install_if: info.install_if.clone(),
            other: Vec::new(),
        }
    }

    /// The entry for a package just read.
    pub fn from_package(pkg: &Package) -> Self {
        Self::from_pkginfo(&pkg.info, pkg.identity(), pkg.file_size)
    }

    /// The entry for a package just written.
    pub fn from_written(pkg: &WrittenPackage) -> Self {
        Self::from_pkginfo(&pkg.info, pkg.identity, pkg.file_size)
    }

    /// `<name>-<version>.apk`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.name, self.version)
    }

    /// apk's order: name by `strcasecmp`, then `strcmp`, then version ascending.
    pub fn order(&self, other: &Self) -> Ordering {
        self.name
            .to_ascii_lowercase()
            .cmp(&other.name.to_ascii_lowercase())
            .then_with(|| self.name.cmp(&other.name))
            .then_with(|| crate::version::compare(&self.version, &other.version))
    }

    /// Appends the block's lines (without the blank separator line) in apk's order.
    pub fn write_lines(&self, out: &mut String) {
        let mut line = |letter: char, value: &str| {
            let _ = writeln!(out, "{letter}:{value}");
        };
        line('C', &self.checksum.to_string());
        line('P', &self.name);
        line('V', &self.version);
        if !self.arch.is_empty() {
            line('A', &self.arch);
        }
        line('S', &self.file_size.to_string());
        line('I', &self.installed_size.to_string());
        line('T', &self.description);
        line('U', &self.url);
        line('L', &self.license);
        if !self.origin.is_empty() {
            line('o', &self.origin);
        }
        if !self.maintainer.is_empty() {
            line('m', &self.maintainer);
        }
        if self.build_time != 0 {
            line('t', &self.build_time.to_string());
        }
        if !self.commit.is_empty() {
            line('c', &self.commit);
        }
        if let Some(k) = self.provider_priority.filter(|&k| k != 0) {
            line('k', &k.to_string());
        }
        if !self.depends.is_empty() {
            line('D', &self.depends.join(" "));
        }
        if !self.provides.is_empty() {
            line('p', &self.provides.join(" "));
        }
        if !self.install_if.is_empty() {
            line('i', &self.install_if.join(" "));
        }
        for (letter, value) in &self.other {
            line(*letter, value);
        }
    }

    /// Applies one `X:value` line; `false` if the letter is not an index field.
    pub fn apply_line(&mut self, letter: char, value: &str) -> Result<bool, String> {
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("`{letter}:` must be a number, found {v:?}"))
        };
        let words = |v: &str| v.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        match letter {
            'C' => {
                self.checksum = Checksum::parse(value)
                    .ok_or_else(|| format!("`C:` is not a Q1/X1 checksum: {value:?}"))?;
            }
            'P' => self.name = value.to_string(),
            'V' => self.version = value.to_string(),
            'A' => self.arch = value.to_string(),
            'S' => self.file_size = num(value)?,
            'I' => self.installed_size = num(value)?,
            'T' => self.description = value.to_string(),
            'U' => self.url = value.to_string(),
            'L' => self.license = value.to_string(),
            'o' => self.origin = value.to_string(),
            'm' => self.maintainer = value.to_string(),
            't' => self.build_time = num(value)?,
            'c' => self.commit = value.to_string(),
            'k' => self.provider_priority = Some(num(value)? as u32),
            'D' => self.depends = words(value),
            'p' => self.provides = words(value),
            'i' => self.install_if = words(value),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// An entry with every field empty, to be filled by [`IndexEntry::apply_line`].
    pub fn empty() -> Self {
        Self {
            checksum: Checksum([0; 20]),
            name: String::new(),
            version: String::new(),
            arch: String::new(),
            file_size: 0,
            installed_size: 0,
            description: String::new(),
            url: String::new(),
            license: String::new(),
            origin: String::new(),
            maintainer: String::new(),
            build_time: 0,
            commit: String::new(),
            provider_priority: None,
            depends: Vec::new(),
            provides: Vec::new(),
            install_if: Vec::new(),
            other: Vec::new(),
        }
    }
}
