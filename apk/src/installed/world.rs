//! `etc/apk/world`: the dependency atoms the user asked for (apk-format.md §4.4, §5.3).
//!
//! apk reads the whole file as whitespace-separated atoms (`apk_blob_pull_deps` on the
//! trimmed file) and writes them one per line, each followed by `\n`
//! (`apk_deps_write_layer` with a `\n` separator, then one more `\n`): so an empty world is a
//! single `\n`. The solver sorts the world by name (`apk_name_cmp_display`: `strcasecmp`, then
//! `strcmp`) before every commit, so the written file is sorted. The file must exist: without
//! it apk refuses the root ("Unable to read database state").

use std::cmp::Ordering;

use super::{DbFile, InstalledError};

/// The characters that end a package name inside an atom: a version operator or a tag
/// (`name@tag>=1.0`, `name~1.2`, `name><Q1…`).
const NAME_END: &[char] = &['<', '>', '=', '~', '@'];

/// The package name an atom is about: `!bar` → `bar`, `foo@edge` → `foo`,
/// `hello>=1.0` → `hello`.
pub fn atom_name(atom: &str) -> &str {
    let atom = atom.strip_prefix('!').unwrap_or(atom);
    atom.find(NAME_END).map_or(atom, |i| &atom[..i])
}

fn name_order(a: &str, b: &str) -> Ordering {
    a.to_ascii_lowercase()
        .cmp(&b.to_ascii_lowercase())
        .then_with(|| a.cmp(b))
}

/// The content of `etc/apk/world`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct World {
    /// Atoms in file order.
    pub atoms: Vec<String>,
}

impl World {
    /// Parses the file: atoms separated by any whitespace. An atom without a name (`!`,
    /// `>=1.0`) is refused, as apk refuses the database.
    pub fn parse(text: &str) -> Result<Self, InstalledError> {
        let mut atoms = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            for atom in line.split_whitespace() {
                if atom_name(atom).is_empty() {
                    return Err(InstalledError::line(
                        DbFile::World,
                        i + 1,
                        None,
                        format!("dependency atom {atom:?} has no package name"),
                    ));
                }
                atoms.push(atom.to_string());
            }
        }
        Ok(Self { atoms })
    }

    /// Reads the file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InstalledError> {
        Self::parse(super::utf8(DbFile::World, bytes)?)
    }

    /// The file as apk writes it: atoms sorted by name, one per line; `\n` when empty.
    pub fn render(&self) -> String {
        let mut atoms: Vec<&str> = self.atoms.iter().map(String::as_str).collect();
        atoms.sort_by(|a, b| name_order(atom_name(a), atom_name(b)));
        let mut out = atoms.join("\n");
        out.push('\n');
        out
    }

    /// Adds `atom`, replacing an atom for the same name (`apk_deps_add`).
    pub fn insert(&mut self, atom: impl Into<String>) {
        let atom = atom.into();
        match self
            .atoms
            .iter_mut()
            .find(|a| atom_name(a) == atom_name(&atom))
        {
            Some(slot) => *slot = atom,
            None => self.atoms.push(atom),
        }
    }

    /// Removes the atom for package `name`; whether there was one (`apk_deps_del`).
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.atoms.len();
        self.atoms.retain(|a| atom_name(a) != name);
        self.atoms.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_atoms() {
        for (atom, name) in [
            ("busybox", "busybox"),
            ("hello>=1.0", "hello"),
            ("foo@edge", "foo"),
            ("!bar", "bar"),
            ("local><Q1UYYMDeBTUd7EmTYCzDHrazip1dk=", "local"),
            ("so:libc.so.6", "so:libc.so.6"),
            ("py3-a~1.2", "py3-a"),
        ] {
            assert_eq!(atom_name(atom), name);
        }
    }

    #[test]
    fn empty_world_is_one_newline_and_output_is_sorted() {
        assert_eq!(World::default().render(), "\n");
        assert_eq!(World::parse("\n").unwrap(), World::default());
        let mut w = World::parse("zlib Busybox\n!bar  alpine-base\tfoo@edge").unwrap();
        assert_eq!(w.render(), "alpine-base\n!bar\nBusybox\nfoo@edge\nzlib\n");
        w.insert("zlib>=1.3");
        assert!(w.remove("bar"));
        assert!(!w.remove("bar"));
        assert_eq!(w.render(), "alpine-base\nBusybox\nfoo@edge\nzlib>=1.3\n");
        let err = World::parse("a\n>=1\n").unwrap_err();
        assert!(matches!(err, InstalledError::Line { line: 2, .. }), "{err}");
    }
}
