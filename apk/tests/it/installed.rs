//! The installed state: the files the real `apk add` wrote are reproduced byte for byte from
//! the fixture packages, a real Alpine database round-trips, and so do generated ones.

use apk::checksum::Checksum;
use apk::index::IndexEntry;
use apk::installed::{
    Acl, IdMap, InstalledDb, InstalledDir, InstalledFile, InstalledPackage, InstalledState, Script,
    ScriptsDb, TriggersDb, World, init_db,
};
use apk::package::{Package, ReadLimits};
use proptest::prelude::*;

fn fixture_bytes(rel: &str) -> Vec<u8> {
    fs_err::read(testkit::fixture(rel)).unwrap()
}

fn fixture_text(rel: &str) -> String {
    String::from_utf8(fixture_bytes(rel)).unwrap()
}

fn fixture_packages() -> Vec<Package> {
    testkit::fixture_packages()
        .iter()
        .map(|p| Package::open(p, ReadLimits::default()).unwrap())
        .collect()
}

#[test]
fn fixture_databases_round_trip_exactly() {
    for rel in ["installed-db/installed", "alpine-3.20.3-db/installed"] {
        let text = fixture_text(rel);
        let db = InstalledDb::parse(&text).unwrap();
        assert_eq!(db.render(), text, "{rel}");
    }
    let alpine = InstalledDb::parse(&fixture_text("alpine-3.20.3-db/installed")).unwrap();
    assert_eq!(alpine.packages.len(), 14);
    let base = alpine.get("alpine-baselayout").unwrap();
    // `q:` without `r:`, and a `D:` on a file path.
    assert_eq!(base.replaces_priority, Some(1000));
    assert!(base.replaces.is_empty());
    assert_eq!(base.entry.depends[1], "/bin/sh");
    let tmp = base.dirs.iter().find(|d| d.path == "tmp").unwrap();
    assert_eq!(tmp.acl.unwrap().mode, 0o1777);
    for rel in ["installed-db/world", "alpine-3.20.3-db/world"] {
        let text = fixture_text(rel);
        assert_eq!(World::parse(&text).unwrap().render(), text, "{rel}");
    }
    let triggers = fixture_text("installed-db/triggers");
    assert_eq!(triggers, "", "no fixture package has triggers");
    assert_eq!(TriggersDb::parse(&triggers).unwrap().render(), triggers);
    let scripts = fixture_bytes("installed-db/scripts.tar");
    assert_eq!(
        ScriptsDb::parse(&scripts).unwrap().to_bytes().unwrap(),
        scripts
    );
}

#[test]
fn installed_db_from_the_fixture_packages_matches_apk_add() {
    let mut db = InstalledDb::default();
    // Added in reverse to exercise the sorted output.
    for pkg in fixture_packages().iter().rev() {
        let entry = IndexEntry::from_package(pkg);
        db.upsert(InstalledPackage::from_read_package(
            pkg,
            entry,
            &IdMap::default(),
        ));
    }
    assert_eq!(db.render(), fixture_text("installed-db/installed"));
    // The same through the bare data entries.
    let hello = &fixture_packages()[0];
    let entries: Vec<_> = hello.files.iter().map(|f| f.entry.clone()).collect();
    let from_entries = InstalledPackage::from_package(IndexEntry::from_package(hello), &entries);
    assert_eq!(&from_entries, db.get("hello").unwrap());
}

#[test]
fn scripts_tar_from_the_hello_package_matches_apk_add() {
    let hello = &fixture_packages()[0];
    let scripts = Script::for_package(&IndexEntry::from_package(hello), &hello.scripts);
    assert_eq!(scripts.len(), 1);
    let db = ScriptsDb { scripts };
    assert_eq!(
        db.to_bytes().unwrap(),
        fixture_bytes("installed-db/scripts.tar")
    );
}

#[test]
fn whole_state_written_into_a_fresh_root_matches_apk_add() {
    let tmp = testkit::tempdir();
    let root = tmp.path();
    init_db(root, "x86_64").unwrap();
    let mut state = InstalledState::load(root).unwrap();
    let ids = IdMap::load(root).unwrap();
    for pkg in fixture_packages() {
        let entry = IndexEntry::from_package(&pkg);
        let scripts = Script::for_package(&entry, &pkg.scripts);
        let installed = InstalledPackage::from_read_package(&pkg, entry, &ids);
        assert!(
            state
                .install(installed, scripts, pkg.info.triggers.clone())
                .is_none()
        );
    }
    state.world.insert("world");
    state.write(root).unwrap();
    for (rel, fixture) in [
        ("lib/apk/db/installed", "installed-db/installed"),
        ("lib/apk/db/scripts.tar", "installed-db/scripts.tar"),
        ("lib/apk/db/triggers", "installed-db/triggers"),
        ("etc/apk/world", "installed-db/world"),
    ] {
        assert_eq!(
            fs_err::read(root.join(rel)).unwrap(),
            fixture_bytes(fixture),
            "{rel}"
        );
    }
    assert_eq!(InstalledState::load(root).unwrap(), state);

    // Removing a package drops its block and its scripts.
    let hello = state.remove("hello").unwrap();
    assert_eq!(hello.entry.name, "hello");
    state.write(root).unwrap();
    let again = InstalledState::load(root).unwrap();
    assert_eq!(again.db.packages.len(), 2);
    assert!(again.scripts.scripts.is_empty());
}

fn text() -> impl Strategy<Value = String> {
    "[^\n]{0,12}"
}

fn word() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9._+:=<>-]{0,10}"
}

fn checksum() -> impl Strategy<Value = Checksum> {
    any::<[u8; 20]>().prop_map(Checksum)
}

fn acl(default: Acl) -> impl Strategy<Value = Option<Acl>> {
    (
        0u32..3,
        0u32..3,
        0u32..=0o7777,
        proptest::option::of(checksum()),
    )
        .prop_map(move |(uid, gid, mode, xattr_digest)| {
            Acl {
                uid,
                gid,
                mode,
                xattr_digest,
            }
            .unless_default(default)
        })
}

fn file() -> impl Strategy<Value = InstalledFile> {
    (
        "[^\n]{1,12}",
        acl(Acl::DEFAULT_FILE),
        proptest::option::of(checksum()),
    )
        .prop_map(|(name, acl, digest)| InstalledFile { name, acl, digest })
}

fn dirs() -> impl Strategy<Value = Vec<InstalledDir>> {
    proptest::collection::vec(
        (
            text(),
            acl(Acl::DEFAULT_DIR),
            proptest::collection::vec(file(), 0..4),
        ),
        0..4,
    )
    .prop_map(|dirs| {
        // apk merges a repeated `F:` into the first, so paths are unique within a block.
        let mut seen = std::collections::HashSet::new();
        dirs.into_iter()
            .filter(|(path, _, _)| seen.insert(path.clone()))
            .map(|(path, acl, files)| InstalledDir { path, acl, files })
            .collect()
    })
}

fn entry() -> impl Strategy<Value = IndexEntry> {
    (
        (
            checksum(),
            "[a-zA-Z][a-z0-9-]{0,6}",
            "[0-9]{1,2}\\.[0-9]-r[0-9]",
        ),
        (
            "[a-z0-9_]{0,6}",
            any::<u32>(),
            any::<u32>(),
            text(),
            text(),
            text(),
        ),
        (
            text(),
            text(),
            0u64..3_000_000_000,
            text(),
            proptest::option::of(1u32..500),
        ),
        (
            proptest::collection::vec(word(), 0..3),
            proptest::collection::vec(word(), 0..3),
            proptest::collection::vec(word(), 0..3),
            proptest::collection::vec(("[bdeghjlnuvwxyz]", text()), 0..2),
        ),
    )
        .prop_map(
            |(
                (checksum, name, version),
                (arch, size, isize, description, url, license),
                (origin, maintainer, build_time, commit, provider_priority),
                (depends, provides, install_if, other),
            )| {
                let mut e = IndexEntry::empty();
                e.checksum = checksum;
                e.name = name;
                e.version = version;
                e.arch = arch;
                e.file_size = size.into();
                e.installed_size = isize.into();
                e.description = description;
                e.url = url;
                e.license = license;
                e.origin = origin;
                e.maintainer = maintainer;
                e.build_time = build_time;
                e.commit = commit;
                e.provider_priority = provider_priority;
                e.depends = depends;
                e.provides = provides;
                e.install_if = install_if;
                e.other = other
                    .into_iter()
                    .map(|(l, v)| (l.chars().next().unwrap(), v))
                    .collect();
                e
            },
        )
}

fn package() -> impl Strategy<Value = InstalledPackage> {
    (
        entry(),
        proptest::collection::vec(word(), 0..3),
        proptest::option::of(1u32..2000),
        proptest::option::of("[a-z]{1,6}"),
        proptest::sample::subsequence(vec!['f', 's', 'x', 'S'], 0..=4),
        dirs(),
    )
        .prop_map(
            |(entry, replaces, replaces_priority, repo_tag, flags, dirs)| InstalledPackage {
                entry,
                replaces,
                replaces_priority,
                repo_tag,
                flags: flags.into_iter().collect(),
                dirs,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn generated_databases_round_trip(packages in proptest::collection::vec(package(), 0..5)) {
        let db = InstalledDb { packages };
        let text = db.render();
        let parsed = InstalledDb::parse(&text).unwrap();
        prop_assert_eq!(parsed.render(), text.clone());
        let sorted: Vec<_> = db.sorted().into_iter().cloned().collect();
        prop_assert_eq!(parsed.packages, sorted);
    }

    #[test]
    fn generated_scripts_and_worlds_round_trip(
        scripts in proptest::collection::vec(
            ("[a-z]{1,20}-[0-9]\\.[0-9]-r0", checksum(), 0usize..7, any::<u32>(),
             proptest::collection::vec(any::<u8>(), 0..700)),
            0..4,
        ),
        atoms in proptest::collection::vec("!?[a-z][a-z0-9-]{0,8}(@[a-z]{1,4})?(>=[0-9])?", 0..6),
    ) {
        let db = ScriptsDb {
            scripts: scripts
                .into_iter()
                .map(|(package, checksum, kind, mtime, content)| Script {
                    package,
                    checksum,
                    kind: apk::installed::ScriptType::ALL[kind],
                    mtime: mtime.into(),
                    content,
                })
                .collect(),
        };
        let bytes = db.to_bytes().unwrap();
        prop_assert_eq!(ScriptsDb::parse(&bytes).unwrap(), db);
        let world = World { atoms };
        let text = world.render();
        prop_assert_eq!(World::parse(&text).unwrap().render(), text);
    }
}
