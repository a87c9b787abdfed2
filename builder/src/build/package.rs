//! After the phases: every `$pkgbasedir/<name>` tree becomes a signed package, the way
//! abuild's `prepare_package` and `create_apks` do it: trace dependencies, write
//! `.PKGINFO` with the metadata the shell left (after `package()` for the main package,
//! after the split function for a subpackage) and the install scripts.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use apk::package::{PackageWriter, Script, TreeOptions, scan_tree};
use apk::pkginfo::PkgInfo;
use apk::sign::SignatureType;

use super::{BuildError, Options, tracedeps};
use crate::Reporter;
use crate::apkbuild::Recipe;

/// A package file written in memory: (file name, bytes).
pub type Written = (String, Vec<u8>);

/// One package of the build before it is written: its metadata as the shell left it and
/// its arch.
pub struct Part {
    /// The variables after `package()` or the split function.
    pub vars: BTreeMap<String, String>,
    /// Its arch.
    pub arch: String,
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
    /// What the build root has installed (`--rootbld`).
    installed: Option<tracedeps::Installed>,
    /// The recipe's accounts by id, whose files are recorded by name.
    owners: Owners,
}

/// uid → name and gid → name of the recipe's `pkgusers` and `pkggroups`.
pub type Owners = (HashMap<u32, String>, HashMap<u32, String>);

/// Traces and writes every package of the build (in memory: name, bytes), the main
/// package first, then the subpackages in recipe order.
pub fn package_all(
    recipe: &Recipe,
    opts: &Options,
    base: &Path,
    parts: BTreeMap<String, Part>,
    installed: Option<tracedeps::Installed>,
    owners: Owners,
    reporter: &dyn Reporter,
) -> Result<Vec<Written>, BuildError> {
    let mut job = Packaging {
        recipe,
        opts,
        reporter,
        fullver: recipe.full_version(),
        parts,
        traced: BTreeMap::new(),
        auto: BTreeMap::new(),
        installed,
        owners,
    };
    job.trace(base)?;
    let mut order = vec![recipe.pkgname().to_string()];
    order.extend(recipe.subpackages().into_iter().map(|s| s.name));
    order.iter().map(|name| job.write(name)).collect()
}

/// The metadata of the main package and of every subpackage, from the records the
/// phases left. A function that set `arch` itself gets abuild's treatment: `noarch` is
/// taken (with a warning), anything else refused.
pub fn collect_parts(
    recipe: &Recipe,
    base: &Path,
    reporter: &dyn Reporter,
) -> Result<BTreeMap<String, Part>, BuildError> {
    let mut parts = BTreeMap::new();
    let main = (recipe.pkgname().to_string(), recipe.pkgarch());
    let subs = recipe.subpackages().into_iter().map(|s| (s.name, s.arch));
    for (name, arch) in std::iter::once(main).chain(subs) {
        let vars = read_meta(&base.join(format!(".meta-{name}")))?;
        let set = vars.get("arch").map_or("", String::as_str);
        let arch = if set == recipe.var("arch") {
            arch
        } else if set == "noarch" {
            reporter.warn(&format!(
                "{name}: the split function set arch=\"noarch\": use subpackages=\"{name}::noarch\" instead"
            ));
            "noarch".to_string()
        } else {
            return Err(BuildError::Postcheck {
                package: name,
                problem: format!(
                    "the function set arch=\"{set}\": use the subpackages=\"pkg:split:arch\" format instead"
                ),
            });
        };
        parts.insert(name, Part { vars, arch });
    }
    Ok(parts)
}

/// Reads the `name SEP value` records a phase left.
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
    /// Traces what each tree provides and needs (unless `!tracedeps` for it).
    fn trace(&mut self, base: &Path) -> Result<(), BuildError> {
        for (name, part) in &self.parts {
            let dir = base.join(name);
            fs_err::create_dir_all(&dir)?;
            let v = |k: &str| part.vars.get(k).cloned().unwrap_or_default();
            let opts = tracedeps::TraceOptions {
                noarch: part.arch == "noarch",
                sonameprefix: v("sonameprefix"),
                pcprefix: v("pcprefix"),
                somask: words(&v("somask")),
                ldpath: v("ldpath"),
                ldpath_recursive: self.recipe.has_option_for(name, "ldpath-recursive"),
                sover_namecheck: self.recipe.has_option_for(name, "sover-namecheck"),
            };
            let traced = if self.recipe.has_option_for(name, "!tracedeps") {
                tracedeps::Traced::default()
            } else {
                tracedeps::trace(&dir, name, &self.fullver, &opts)?
            };
            self.traced.insert(name.clone(), (dir, traced));
        }
        let prefixes = (self.recipe.var("sonameprefix"), self.recipe.var("pcprefix"));
        let (auto, warnings) = tracedeps::auto_depends(
            &self.traced,
            &self.fullver,
            prefixes,
            self.installed.as_ref(),
        )?;
        for w in warnings {
            self.reporter.warn(&w);
        }
        self.auto = auto;
        Ok(())
    }

    /// Writes one package: its `.PKGINFO`, scripts and data, signed.
    fn write(&self, name: &str) -> Result<Written, BuildError> {
        let mut info = self.pkginfo(name);
        let scripts = self.scripts(name, &mut info)?;
        add_sh_dependency(name, &mut info, &scripts);
        self.add_traced(name, &mut info);
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
            maintainer: match v("maintainer") {
                m if m.is_empty() => self.recipe.maintainer(),
                m => m,
            },
            // abuild writes `$(echo $license)`: one line, single spaces.
            license: words(&v("license")).join(" "),
            replaces: words(&v("replaces")),
            // A package never depends on itself (abuild skips the atom that is its name).
            depends: words(&v("depends"))
                .into_iter()
                .filter(|d| d != name)
                .collect(),
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
        let mut tree = TreeOptions::new(source_date);
        // abuild's `.owner-map`: the accounts' files by name, with id 0.
        tree.names = self.owners.clone();
        let entries = scan_tree(dir, &tree).map_err(pkg_err)?;
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
