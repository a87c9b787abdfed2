//! The recipe's `pkgusers` and `pkggroups` as the phases see them: a passwd and a group
//! holding the root's own entries plus those accounts, allocated as abuild's rootbld does
//! (its awk script: groups from gid 101 up, users from uid 100 up, each name taking the
//! next id whether or not the root already has it, the root's own entries winning, a
//! user's primary group the same-named group or `nobody`). Host builds bind these files
//! over `/etc/passwd` and `/etc/group` in the sandbox; `--rootbld` writes them into its
//! build root. The host's own files are never changed (abuild's `mkusers` would add the
//! accounts to the build machine).
//!
//! Packing then records files owned by these accounts by name with id 0, as abuild's
//! `.owner-map` makes tar do: the ids are the build's, the name is what the target's
//! passwd resolves (apk-format.md §1.3).

use std::collections::HashMap;

/// abuild's first gid for `pkggroups`.
const FIRST_GID: u32 = 101;
/// abuild's first uid for `pkgusers`.
const FIRST_UID: u32 = 100;
/// The primary gid of a user without a same-named group when the root has no `nobody`
/// group either (a Debian host has `nogroup`): abuild's awk would leave the field empty,
/// which no tool reads back; 65534 is `nobody` everywhere.
const NOBODY_GID: u32 = 65534;

/// passwd and group with the recipe's accounts, and their ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounts {
    /// The passwd file's text.
    pub passwd: String,
    /// The group file's text.
    pub group: String,
    /// Each pkguser's name and uid (as the file has it: the root's own entry wins).
    pub users: Vec<(String, u32)>,
    /// Each pkggroup's name and gid.
    pub groups: Vec<(String, u32)>,
}

impl Accounts {
    /// The root's `passwd` and `group` texts with `users` and `groups` added where they
    /// have no entry of that name.
    pub fn allocate(passwd: &str, group: &str, users: &[String], groups: &[String]) -> Self {
        let mut new_groups: Vec<(String, String)> = Vec::new();
        for (g, gid) in groups.iter().zip(FIRST_GID..) {
            put(&mut new_groups, g, format!("{g}:x:{gid}:"));
        }
        let group = merged(group, &new_groups);
        let nobody = field(&group, "nobody", 2).unwrap_or(NOBODY_GID);
        let mut new_users: Vec<(String, String)> = Vec::new();
        for (u, uid) in users.iter().zip(FIRST_UID..) {
            let gid = field(&group, u, 2).unwrap_or(nobody);
            put(
                &mut new_users,
                u,
                format!("{u}:x:{uid}:{gid}:{u}:/dev/null:/sbin/nologin"),
            );
        }
        let passwd = merged(passwd, &new_users);
        let ids = |text: &str, names: &[String]| {
            let mut ids: Vec<(String, u32)> = Vec::new();
            for n in names {
                if let Some(id) = field(text, n, 2)
                    && !ids.iter().any(|(m, _)| m == n)
                {
                    ids.push((n.clone(), id));
                }
            }
            ids
        };
        Self {
            users: ids(&passwd, users),
            groups: ids(&group, groups),
            passwd,
            group,
        }
    }

    /// uid → name and gid → name of the accounts, for [`apk::package::TreeOptions`]:
    /// root (id 0, should a recipe name it) is left out, as root's files are written
    /// without names.
    pub fn owner_names(&self) -> (HashMap<u32, String>, HashMap<u32, String>) {
        let table = |ids: &[(String, u32)]| {
            ids.iter()
                .filter(|(_, id)| *id != 0)
                .map(|(n, id)| (*id, n.clone()))
                .collect()
        };
        (table(&self.users), table(&self.groups))
    }

    /// Whether the recipe declares any account.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }
}

/// Sets `name`'s line in `lines` (a later one of the same name replaces it, as the awk
/// array assignment does).
fn put(lines: &mut Vec<(String, String)>, name: &str, line: String) {
    match lines.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = line,
        None => lines.push((name.to_string(), line)),
    }
}

/// `text` (the root's file, kept as it is) followed by the `new` lines whose names it
/// does not have.
fn merged(text: &str, new: &[(String, String)]) -> String {
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for (name, line) in new {
        if entry(text, name).is_none() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `name`'s line in a passwd/group text.
fn entry<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    text.lines().find(|l| l.split(':').next() == Some(name))
}

/// Numeric field `index` of `name`'s entry in a passwd/group text.
fn field(text: &str, name: &str, index: usize) -> Option<u32> {
    entry(text, name)?.split(':').nth(index)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn accounts_are_allocated_as_abuilds_rootbld_awk_does() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nnginx:x:33:33::/:/sbin/nologin\n";
        let group = "root:x:0:root\nnobody:x:65534:\nwww:x:82:\n";
        let a = Accounts::allocate(passwd, group, &names("mix nginx lone"), &names("mix www"));
        // Every name takes the next id, even one the root already has (www: 102 unused).
        assert_eq!(
            a.group,
            "root:x:0:root\nnobody:x:65534:\nwww:x:82:\nmix:x:101:\n"
        );
        assert_eq!(
            a.passwd,
            "root:x:0:0:root:/root:/bin/sh\nnginx:x:33:33::/:/sbin/nologin\n\
             mix:x:100:101:mix:/dev/null:/sbin/nologin\n\
             lone:x:102:65534:lone:/dev/null:/sbin/nologin\n"
        );
        assert_eq!(
            a.users,
            [
                ("mix".into(), 100),
                ("nginx".into(), 33),
                ("lone".into(), 102)
            ]
        );
        assert_eq!(a.groups, [("mix".into(), 101), ("www".into(), 82)]);
        let (uids, gids) = a.owner_names();
        assert_eq!(uids[&100], "mix");
        assert_eq!(gids[&82], "www");
    }

    #[test]
    fn a_user_without_group_gets_nobodys_and_root_is_never_named() {
        // No `nobody` group (a Debian host: `nogroup`): 65534 all the same.
        let a = Accounts::allocate("root:x:0:0::/root:/bin/sh", "", &names("svc root"), &[]);
        assert!(
            a.passwd
                .ends_with("\nsvc:x:100:65534:svc:/dev/null:/sbin/nologin\n")
        );
        assert_eq!(a.users, [("svc".into(), 100), ("root".into(), 0)]);
        assert_eq!(a.owner_names().0.len(), 1);
        assert!(Accounts::allocate("", "", &[], &[]).is_empty());
    }
}
