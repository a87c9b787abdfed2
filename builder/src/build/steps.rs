//! The recipe's functions in abuild's order, each a phase in the sandbox: `unpack()` when
//! the recipe has its own, `prepare()`, `build()`, `check()`, `package()` (its variables
//! saved for the main package, as abuild writes the main `.PKGINFO` in the shell that
//! ran `package()`), then each subpackage's split function in a fresh shell with
//! `$subpkgname`, `$subpkgdir` and `$subpkgarch` set and `provides`/`install_if` cleared
//! (abuild's `pre_split`), and `strip` over what the packages hold. In a sandbox the first
//! phases run as an unprivileged build user and the packaging ones as root, as abuild runs
//! them (the latter under fakeroot).

use std::path::PathBuf;

use super::BuildError;
use super::phase::{Runner, Sandbox};
use crate::Reporter;
use crate::apkbuild::Recipe;
use crate::apkbuild::script::{self, Context};

/// abuild's `runpart` for prepare, build, check and package: `$builddir` when it exists
/// (else `$startdir`), git kept from looking above the recipe.
const ENTER: &str = "export GIT_CEILING_DIRECTORIES=\"$startdir\"\n\
                     if [ -d \"$builddir\" ]; then cd \"$builddir\"; fi";

/// The phases of one build and where they run.
pub struct Phases<'a> {
    /// The recipe.
    pub recipe: &'a Recipe,
    /// Progress and output.
    pub reporter: &'a dyn Reporter,
    /// abuild's variables, as the shell sees them.
    pub ctx: &'a Context,
    /// Runs the shell in the sandbox.
    pub runner: Runner<'a>,
    /// Whether check() runs.
    pub check: bool,
}

impl<'a> Phases<'a> {
    /// The phases of `recipe` in `sandbox`.
    pub fn new(
        recipe: &'a Recipe,
        ctx: &'a Context,
        sandbox: &'a dyn Sandbox,
        reporter: &'a dyn Reporter,
        check: bool,
    ) -> Self {
        Self {
            recipe,
            reporter,
            ctx,
            runner: Runner { sandbox },
            check,
        }
    }

    /// unpack() (when the recipe has its own), prepare(), build(), check(), package()
    /// and the split functions.
    pub fn run_all(&self) -> Result<(), BuildError> {
        let user = self.as_user(false);
        if self.recipe.functions.contains("unpack") {
            self.run(&user, "unpack", "unpack")?;
        }
        self.run(&user, "prepare", &format!("{ENTER}\nprepare"))?;
        self.run(&user, "build", &format!("{ENTER}\nbuild"))?;
        self.check()?;
        self.package()?;
        self.split_functions()
    }

    fn run(&self, ctx: &Context, phase: &str, body: &str) -> Result<(), BuildError> {
        self.reporter
            .info(&format!("{}: {phase}()", self.recipe.pkgname()));
        self.runner
            .run(ctx, &self.recipe.path, phase, body, self.reporter)?;
        Ok(())
    }

    /// The context as the build user, or as root for `options="checkroot"` checks.
    fn as_user(&self, checkroot: bool) -> Context {
        let mut ctx = self.ctx.clone();
        ctx.as_root = checkroot && self.recipe.has_option("checkroot");
        ctx
    }

    /// check(), unless `options="!check"` or cross-building.
    fn check(&self) -> Result<(), BuildError> {
        if self.check {
            self.run(&self.as_user(true), "check", &format!("{ENTER}\ncheck"))?;
        } else {
            self.reporter.info(&format!(
                "{}: check() skipped (options=\"!check\", or cross-building)",
                self.recipe.pkgname()
            ));
        }
        Ok(())
    }

    /// package(), into a fresh `$pkgdir`, which it must create.
    fn package(&self) -> Result<(), BuildError> {
        self.run(
            self.ctx,
            "package",
            &format!(
                "rm -rf \"$pkgdir\"\n{ENTER}\npackage\n\
                 [ -d \"$pkgdir\" ] || die \"Missing pkgdir for $pkgname: package() must install into \\\"\\$pkgdir\\\" (mkdir -p \\\"\\$pkgdir\\\" for a package without files)\"\n\
                 {} > \"$pkgbasedir/.meta-$pkgname\"",
                script::dump_vars_fn()
            ),
        )
    }

    /// Each subpackage's split function, its variables saved for the packaging step.
    fn split_functions(&self) -> Result<(), BuildError> {
        for sub in self.recipe.subpackages() {
            let mut ctx = self.ctx.clone();
            let subpkgdir = self.ctx.pkgbasedir().join(&sub.name);
            ctx.vars = vec![
                ("subpkgname".into(), sub.name.clone()),
                ("subpkgsplit".into(), sub.func.clone()),
                ("subpkgarch".into(), sub.arch.clone()),
                ("subpkgdir".into(), subpkgdir.display().to_string()),
            ];
            self.run(
                &ctx,
                &sub.func,
                &format!(
                    "rm -rf \"$subpkgdir\"\nprovides=\"\"\ninstall_if=\"\"\ncd \"$pkgdir\"\n{}\n\
                     [ -d \"$subpkgdir\" ] || die \"Missing subpkgdir for $subpkgname: {}() moved nothing into it\"\n\
                     {} > \"$pkgbasedir/.meta-$subpkgname\"",
                    sub.func,
                    sub.func,
                    script::dump_vars_fn()
                ),
            )?;
        }
        Ok(())
    }

    /// Strips `files` (paths inside `$pkgbasedir`) with the sandbox's `strip`, keeping
    /// each file's inode and mode as abuild's `stripbin` does.
    pub fn strip(&self, files: &[PathBuf]) -> Result<(), BuildError> {
        if files.is_empty() {
            return Ok(());
        }
        let base = self.ctx.pkgbasedir();
        let list: Vec<String> = files
            .iter()
            .map(|f| script::shell_quote(&base.join(f).display().to_string()))
            .collect();
        self.run(
            self.ctx,
            "strip",
            &format!(
                "__t=\"$pkgbasedir/.strip-tmp\"\nfor __f in {}; do\n\
                 \t__ro=; [ -w \"$__f\" ] || {{ chmod u+w \"$__f\"; __ro=1; }}\n\
                 \tstrip -o \"$__t\" \"$__f\"\n\tcat \"$__t\" > \"$__f\"\n\trm -f \"$__t\"\n\
                 \t[ -z \"$__ro\" ] || chmod u-w \"$__f\"\ndone",
                list.join(" ")
            ),
        )
    }
}
