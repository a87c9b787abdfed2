//! After the phases: every `$pkgbasedir/<name>` tree becomes a signed package, the way
//! abuild's `prepare_package` and `create_apks` do it: strip, trace dependencies, write
//! `.PKGINFO` with the recipe's (or the split function's) metadata and the install scripts.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use apk::package::{PackageWriter, Script, TreeOptions, scan_tree};
use apk::pkginfo::PkgInfo;
use apk::sign::SignatureType;

use super::{BuildError, Options, tracedeps};
use crate::Reporter;
use crate::apkbuild::Recipe;
use crate::apkbuild::script::Context;

/// A package file written in memory: (file name, bytes).
pub type Written = (String, Vec<u8>);

/// One package of the build before it is written: its metadata as the shell left it (the
/// recipe's for the main package, the split function's for a subpackage) and its arch.
struct Part {
    vars: BTreeMap<String, String>,
    arch: String,
}

/// What the steps of one packaging run share.
struct Packaging<'a> {
    recipe: &'a Recipe,
    opts: &'a Options,
    reporter: &'a dyn Reporter,
    fullver: String,
    parts: BTreeMap<String, Part>,
    traced: BTreeMap<String, (PathBuf, tracedeps::Traced)>,
    auto: BTreeMap<String, Vec<String>>,
}

/// Strips, traces and writes every package of the build (in memory: name, bytes), the main
/// package first, then the subpackages in recipe order.
pub fn package_all(
    recipe: &Recipe,
    opts: &Options,
    ctx: &Context,
    reporter: &dyn Reporter,
) -> Result<Vec<Written>, BuildError> {
    let base = ctx.pkgbasedir();
    let mut job = Packaging {
        recipe,
        opts,
        reporter,
        fullver: recipe.full_version(),
        parts: collect_parts(recipe, &base)?,
        traced: BTreeMap::new(),
        auto: BTreeMap::new(),
    };
    job.strip_and_trace(&base)?;
    let mut order = vec![recipe.pkgname().to_string()];
    order.extend(recipe.subpackages().into_iter().map(|s| s.name));
    order.iter().map(|name| job.write(name)).collect()
}

/// The metadata of the main package and of every subpackage.
fn collect_parts(recipe: &Recipe, base: &Path) -> Result<BTreeMap<String, Part>, BuildError> {
    let mut parts = BTreeMap::new();
    parts.insert(
        recipe.pkgname().to_string(),
        Part {
            vars: recipe.vars.clone(),
            arch: recipe.pkgarch(),
        },
    );
    for sub in recipe.subpackages() {
        let vars = read_meta(&base.join(format!(".meta-{}", sub.name)))?;
        parts.insert(
            sub.name.clone(),
            Part {
                vars,
                arch: sub.arch.clone(),
            },
        );
    }
    Ok(parts)
}

/// Reads the `name SEP value` records a split function left.
fn read_meta(path: &Path) -> Result<BTreeMap<String, String>, BuildError> {
    let text = fs_err::read_to_string(path)?;
    Ok(text
        .split('\x1e')
        .filter(|r| !r.is_empty())
        .filter_map(|r| r.split_once('\x1f'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

impl Packaging<'_> {
    /// Strips ELF files (unless `!strip`) and traces what each tree provides and needs.
    fn strip_and_trace(&mut self, base: &Path) -> Result<(), BuildError> {
        for (name, part) in &self.parts {
            let dir = base.join(name);
            fs_err::create_dir_all(&dir)?;
            if !self.recipe.has_option("!strip") {
                let n = tracedeps::strip(&dir)?;
                if n > 0 {
                    self.reporter
                        .info(&format!("{name}: stripped {n} ELF files"));
                }
            }
            let noarch = part.arch == "noarch";
            let traced = tracedeps::trace(&dir, &self.fullver, noarch)?;
            self.traced.insert(name.clone(), (dir, traced));
        }
        self.auto = tracedeps::auto_depends(&self.traced, &self.fullver);
        Ok(())
    }

    /// Writes one package: its `.PKGINFO`, scripts and data, signed.
    fn write(&self, name: &str) -> Result<Written, BuildError> {
        let mut info = self.pkginfo(name);
        let scripts = self.scripts(name, &mut info)?;
        add_sh_dependency(name, &mut info, &scripts);
        if !self.recipe.has_option("!tracedeps") {
            self.add_traced(name, &mut info);
        }
        let dir = &self.traced[name].0;
        let bytes = self.write_signed(dir, &info, scripts)?;
        self.reporter.info(&format!(
            "{name}: {} ({} bytes)",
            info.file_name(),
            bytes.len()
        ));
        Ok((info.file_name(), bytes))
    }

    /// The `.PKGINFO` fields from the package's variables.
    fn pkginfo(&self, name: &str) -> PkgInfo {
        let part = &self.parts[name];
        let v = |k: &str| part.vars.get(k).cloned().unwrap_or_default();
        PkgInfo {
            pkgname: name.to_string(),
            pkgver: self.fullver.clone(),
            pkgdesc: v("pkgdesc"),
            url: v("url"),
            builddate: self.opts.source_date,
            packager: self.opts.packager.clone().unwrap_or_default(),
            arch: part.arch.clone(),
            origin: self.recipe.pkgname().to_string(),
            maintainer: super::maintainer(self.recipe),
            license: v("license"),
            replaces: words(&v("replaces")),
            depends: words(&v("depends")),
            provides: words(&v("provides")),
            install_if: words(&v("install_if")),
            provider_priority: v("provider_priority").parse().ok(),
            replaces_priority: v("replaces_priority").parse().ok(),
            generator: Some(format!(
                "Generated by apkbuild {}",
                env!("CARGO_PKG_VERSION")
            )),
            ..PkgInfo::default()
        }
    }

    /// The install scripts and trigger of `name` (`install=`, `triggers=`), in apk's order;
    /// a trigger's directories go into `info`.
    fn scripts(&self, name: &str, info: &mut PkgInfo) -> Result<Vec<Script>, BuildError> {
        let recipe = self.recipe;
        let mut scripts = Vec::new();
        for file in words(recipe.var("install")) {
            if let Some(kind) = file.strip_prefix(&format!("{name}.")) {
                scripts.push(Script {
                    name: format!(".{kind}"),
                    content: fs_err::read(recipe.dir.join(&file)).map_err(|source| {
                        BuildError::RecipeFile {
                            apkbuild: recipe.path.clone(),
                            field: "install",
                            file: file.clone(),
                            source,
                        }
                    })?,
                });
            }
        }
        for t in words(recipe.var("triggers")) {
            let (file, dirs) = t.split_once('=').unwrap_or((&t, ""));
            if file.strip_suffix(".trigger") == Some(name) {
                scripts.push(Script {
                    name: ".trigger".into(),
                    content: fs_err::read(recipe.dir.join(file))?,
                });
                info.triggers = dirs
                    .split(':')
                    .filter(|d| !d.is_empty())
                    .map(str::to_string)
                    .collect();
            }
        }
        scripts.sort_by_key(|s| apk::package::SCRIPT_NAMES.iter().position(|n| *n == s.name));
        Ok(scripts)
    }

    /// The traced `so:`/`cmd:`/`pc:` provides and the automatic dependencies.
    fn add_traced(&self, name: &str, info: &mut PkgInfo) {
        for p in &self.traced[name].1.provides {
            if !info.provides.contains(p) {
                info.provides.push(p.clone());
            }
        }
        for d in &self.auto[name] {
            if !info.depends.contains(d) {
                info.depends.push(d.clone());
            }
        }
    }

    /// The signed package bytes of the tree `dir`.
    fn write_signed(
        &self,
        dir: &Path,
        info: &PkgInfo,
        scripts: Vec<Script>,
    ) -> Result<Vec<u8>, BuildError> {
        let pkg_err = |source| BuildError::Package {
            path: dir.to_path_buf(),
            source: Box::new(source),
        };
        let source_date = self.opts.source_date;
        let entries = scan_tree(dir, &TreeOptions::new(source_date)).map_err(pkg_err)?;
        let mut writer = PackageWriter::new(info.clone(), source_date);
        writer.scripts = scripts;
        writer.signers.push((&self.opts.key, SignatureType::Rsa));
        let mut bytes = Vec::new();
        {
            let mut buf = BufWriter::new(&mut bytes);
            writer.write(&entries, &mut buf).map_err(pkg_err)?;
            buf.flush()?;
        }
        Ok(bytes)
    }
}

/// abuild: a `#!/bin/sh` script makes the package depend on /bin/sh (unless it already
/// depends on busybox or /bin/sh, or is busybox).
fn add_sh_dependency(name: &str, info: &mut PkgInfo, scripts: &[Script]) {
    let has_sh = |d: &String| {
        let n = d.split(['<', '>', '=', '~']).next().unwrap_or(d);
        n == "busybox" || n == "/bin/sh"
    };
    if name != "busybox"
        && !info.depends.iter().any(has_sh)
        && scripts.iter().any(|s| {
            s.content
                .strip_prefix(b"#!")
                .is_some_and(|r| r.trim_ascii_start().starts_with(b"/bin/sh"))
        })
    {
        info.depends.push("/bin/sh".into());
    }
}
