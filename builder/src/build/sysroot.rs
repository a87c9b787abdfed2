//! Build dependencies of a build on the host: the packages of `$REPODEST` the recipe needs
//! (and what they need), extracted into a private sysroot whose headers, libraries,
//! pkg-config files and programs the compiler and the phases find through variables.

use std::path::{Path, PathBuf};

use apk::index::IndexEntry;
use apk::package::ReadLimits;

use super::BuildError;
use crate::apkbuild::script::DEFAULT_LDFLAGS;

/// Extracts the build dependencies into a private root.
pub fn install(deps: &[&(PathBuf, IndexEntry)], sysroot: &Path) -> Result<(), BuildError> {
    fs_err::create_dir_all(sysroot)?;
    let root = apk::rootfs::RootDir::open(sysroot).map_err(|e| BuildError::Root {
        path: sysroot.to_path_buf(),
        reason: e.to_string(),
    })?;
    let apply = apk::rootfs::ApplyOptions {
        chown: false,
        devices: apk::rootfs::DevicePolicy::CreateOrSkip,
    };
    for (dir, e) in deps {
        let path = dir.join(e.file_name());
        let input = std::io::BufReader::new(fs_err::File::open(&path)?);
        apk::package::extract(input, &root, &apply, ReadLimits::default()).map_err(|source| {
            BuildError::Package {
                path,
                source: Box::new(source),
            }
        })?;
    }
    Ok(())
}

/// Compiler and pkg-config variables that make a sysroot's headers and libraries usable.
pub fn exports(sysroot: &Path) -> Vec<(String, String)> {
    let s = sysroot.display();
    vec![
        ("CPATH".into(), format!("{s}/usr/include")),
        ("LIBRARY_PATH".into(), format!("{s}/usr/lib:{s}/lib")),
        ("LD_LIBRARY_PATH".into(), format!("{s}/usr/lib:{s}/lib")),
        (
            "LDFLAGS".into(),
            format!("{DEFAULT_LDFLAGS} -Wl,-rpath-link,{s}/usr/lib"),
        ),
        (
            "PKG_CONFIG_PATH".into(),
            format!("{s}/usr/lib/pkgconfig:{s}/usr/share/pkgconfig"),
        ),
        ("PKG_CONFIG_SYSROOT_DIR".into(), s.to_string()),
        (
            "PATH".into(),
            format!("{s}/usr/bin:{s}/bin:{}", crate::apkbuild::CLEAN_PATH),
        ),
    ]
}
