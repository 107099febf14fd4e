//! Secrets go to each OS's own keychain: keyring's native backend is switched on per target
//! (crates/engine/Cargo.toml), because keyring with no backend feature silently keeps secrets
//! in memory. Only Linux can be built here, so this reads what Cargo resolves for each target:
//! the engine's declared keyring dependencies (`cargo metadata`) and the features a build for
//! that target would compile (`cargo tree --target`, which needs no installed target).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// (target triple, its `cfg`, the keyring features it needs, features it must not get).
const TARGETS: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "x86_64-unknown-linux-gnu",
        r#"cfg(target_os = "linux")"#,
        &["sync-secret-service", "crypto-rust"],
        &["apple-native", "windows-native"],
    ),
    (
        "aarch64-apple-darwin",
        r#"cfg(target_os = "macos")"#,
        &["apple-native"],
        &["sync-secret-service", "windows-native"],
    ),
    (
        "x86_64-apple-darwin",
        r#"cfg(target_os = "macos")"#,
        &["apple-native"],
        &["sync-secret-service", "windows-native"],
    ),
    (
        "x86_64-pc-windows-msvc",
        r#"cfg(target_os = "windows")"#,
        &["windows-native"],
        &["sync-secret-service", "apple-native"],
    ),
];

fn cargo(args: &[&str]) -> String {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(&workspace)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("cargo prints UTF-8")
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn engine_declares_a_native_keychain_backend_per_os_in_cargo_metadata() {
    let meta: serde_json::Value =
        serde_json::from_str(&cargo(&["metadata", "--format-version", "1", "--locked"]))
            .expect("cargo metadata is JSON");
    let engine = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "syncdesk-engine")
        .expect("the engine is in the workspace");
    let keyring: Vec<_> = engine["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .filter(|d| d["name"] == "keyring")
        .collect();
    for d in &keyring {
        // An untargeted keyring would reach every OS with whatever features it has, if any.
        assert!(d["target"].is_string(), "keyring without a target: {d}");
    }
    for (triple, cfg, wanted, _) in TARGETS {
        let dep = keyring
            .iter()
            .find(|d| d["target"] == *cfg)
            .unwrap_or_else(|| panic!("no keyring dependency for {cfg} ({triple})"));
        let features: BTreeSet<String> = dep["features"]
            .as_array()
            .expect("features")
            .iter()
            .map(|f| f.as_str().expect("a feature name").to_string())
            .collect();
        assert_eq!(features, set(wanted), "keyring's features for {cfg}");
    }
    // And the lock file resolves keyring with all of them (metadata unifies every target).
    let node = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve")
        .iter()
        .find(|n| n["id"].as_str().is_some_and(|id| id.contains("keyring@")))
        .expect("keyring is resolved");
    for (_, _, wanted, _) in TARGETS {
        for f in *wanted {
            assert!(
                node["features"]
                    .as_array()
                    .expect("features")
                    .iter()
                    .any(|x| x == f),
                "resolved keyring lacks {f}: {}",
                node["features"]
            );
        }
    }
}

#[test]
fn a_build_for_each_os_compiles_only_its_own_keychain_backend() {
    for (triple, _, wanted, unwanted) in TARGETS {
        let tree = cargo(&[
            "tree",
            "--locked",
            "-p",
            "syncdesk-engine",
            "--target",
            triple,
            "-e",
            "features",
            "-i",
            "keyring",
            "--prefix",
            "none",
        ]);
        let features: BTreeSet<String> = tree
            .lines()
            .filter_map(|l| l.strip_prefix("keyring feature \""))
            .filter_map(|l| l.split('"').next())
            .map(str::to_string)
            .collect();
        for f in *wanted {
            assert!(
                features.contains(*f),
                "{triple} builds keyring without {f}: {features:?}"
            );
        }
        for f in *unwanted {
            assert!(
                !features.contains(*f),
                "{triple} builds keyring with {f}: {features:?}"
            );
        }
    }
}
