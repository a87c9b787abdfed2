//! Owner names of package entries mapped through the *target's* `etc/passwd` and
//! `etc/group` (apk-format.md §4.8 step 1): apk resolves `uname`/`gname` in the root it
//! installs to, falling back to the numeric ids in the tar header.

use std::collections::HashMap;
use std::io::Read;

use crate::rootfs::RootDir;

/// Name → id tables of a root.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
}

fn table(root: &RootDir, rel: &str) -> HashMap<String, u32> {
    let mut text = String::new();
    if let Ok(mut f) = root.open_file(rel) {
        let _ = f.read_to_string(&mut text);
    }
    parse_table(&text)
}

/// Parses `name:x:id:…` lines; the first entry for a name wins, as with `getpwnam`.
fn parse_table(text: &str) -> HashMap<String, u32> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if let Ok(id) = id.parse() {
            map.entry(name.to_owned()).or_insert(id);
        }
    }
    map
}

impl Owners {
    /// Reads the tables of `root` (missing files give empty tables).
    pub fn load(root: &RootDir) -> Self {
        Self {
            users: table(root, "etc/passwd"),
            groups: table(root, "etc/group"),
        }
    }

    /// The uid for `uname`, else `uid`.
    pub fn uid(&self, uname: &str, uid: u32) -> u32 {
        self.users.get(uname).copied().unwrap_or(uid)
    }

    /// The gid for `gname`, else `gid`.
    pub fn gid(&self, gname: &str, gid: u32) -> u32 {
        self.groups.get(gname).copied().unwrap_or(gid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let t = parse_table(
            "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:102::/:/sbin/nologin\nbad\nnginx:x:7:7\n",
        );
        assert_eq!(t["root"], 0);
        assert_eq!(t["nginx"], 101);
        assert_eq!(t.len(), 2);
    }
}
