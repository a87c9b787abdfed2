//! Owner and group names resolved through the *target's* `etc/passwd` and `etc/group`
//! (apk-format.md §4.1, §4.8 step 1; apk-tools `apk_id_cache_resolve_uid`/`_gid`).
//!
//! apk records in `a:`/`M:` the ids the names in the tar headers have inside the root being
//! installed into, falling back to the numeric ids of the header when a name is unknown
//! there. A package that ships files owned by a user its pre-install script creates gets
//! that user's id in the root, not the builder's.

use std::collections::HashMap;
use std::path::Path;

use super::InstalledError;
use crate::tar::Entry;

/// Name → id tables of a root filesystem.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdMap {
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
}

impl IdMap {
    /// Reads `etc/passwd` and `etc/group` under `root`; a missing file is an empty table
    /// (then every entry keeps its numeric ids, as apk does).
    pub fn load(root: &Path) -> Result<Self, InstalledError> {
        let read = |rel: &str| match fs_err::read(root.join(rel)) {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(InstalledError::Io(e)),
        };
        Ok(Self::parse(&read("etc/passwd")?, &read("etc/group")?))
    }

    /// Builds the tables from the text of `passwd` (`name:pw:uid:…`) and `group`
    /// (`name:pw:gid:…`). Malformed lines are skipped; the first line for a name wins, as
    /// with `getpwent`.
    pub fn parse(passwd: &str, group: &str) -> Self {
        fn table(text: &str) -> HashMap<String, u32> {
            let mut out = HashMap::new();
            for line in text.lines() {
                let mut fields = line.split(':');
                let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next())
                else {
                    continue;
                };
                if let Ok(id) = id.parse() {
                    out.entry(name.to_string()).or_insert(id);
                }
            }
            out
        }
        Self {
            users: table(passwd),
            groups: table(group),
        }
    }

    /// The `(uid, gid)` apk records for `entry`: its `uname`/`gname` looked up here, else
    /// the header's numbers; an unknown `root` is 0 (`apk_id_cache_resolve_uid`).
    pub fn resolve(&self, entry: &Entry) -> (u32, u32) {
        let lookup = |table: &HashMap<String, u32>, name: &str, numeric: u32| match table.get(name)
        {
            Some(&id) => id,
            None if name == "root" => 0,
            None => numeric,
        };
        (
            lookup(&self.users, &entry.uname, entry.uid),
            lookup(&self.groups, &entry.gname, entry.gid),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::EntryType;

    fn entry(uname: &str, uid: u32, gname: &str, gid: u32) -> Entry {
        Entry {
            path: "x".into(),
            kind: EntryType::File,
            mode: 0o644,
            uid,
            gid,
            uname: uname.into(),
            gname: gname.into(),
            mtime: 0,
            size: 0,
            link: String::new(),
            dev: (0, 0),
            xattrs: Vec::new(),
            checksum_sha1: None,
            offset: 0,
        }
    }

    #[test]
    fn names_resolve_through_the_target_with_numeric_fallback() {
        let ids = IdMap::parse(
            "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:102::/:/sbin/nologin\nbad line\nnginx:x:7:7::/:\n",
            "root:x:0:\nwww-data:x:82:\n",
        );
        assert_eq!(
            ids.resolve(&entry("nginx", 1000, "www-data", 1000)),
            (101, 82)
        );
        assert_eq!(ids.resolve(&entry("ghost", 1234, "", 55)), (1234, 55));
        assert_eq!(
            IdMap::default().resolve(&entry("root", 5, "root", 5)),
            (0, 0)
        );
    }

    #[test]
    fn missing_files_are_empty_tables() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(IdMap::load(tmp.path()).unwrap(), IdMap::default());
    }
}
