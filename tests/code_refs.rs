//! `gatehouse code-refs`: the flags of the database, looked up in a source tree that has a
//! `.gitignore`, printed as text and as one JSON document.

mod common;

use common::gatehouse;
use gatehouse::config::DatabaseUrl;
use gatehouse::service::{Actor, Clock, Service};
use serde_json::{json, Value};

#[tokio::test]
async fn code_refs_finds_each_flag_in_the_tree_and_names_the_unused_ones() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/g.db", dir.path().display());
    let url = DatabaseUrl::parse(&database_url).unwrap();
    let (service, _) = Service::open(&url, Clock::system()).await.unwrap();
    for key in ["new-checkout", "checkout", "old-search"] {
        service.apply(&Actor::cli(), common::new_flag(key)).await.unwrap();
    }
    service.close().await;

    let tree = dir.path().join("app");
    std::fs::create_dir_all(tree.join(".git")).unwrap();
    std::fs::create_dir_all(tree.join("src")).unwrap();
    std::fs::create_dir_all(tree.join("dist")).unwrap();
    std::fs::write(tree.join(".gitignore"), "dist/\n").unwrap();
    std::fs::write(
        tree.join("src/checkout.tsx"),
        "const on = useFlag('new-checkout');\n// not checkout_v2 or my-checkout\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("src/main.rs"),
        "fn main() {\n    flag(\"checkout\");\n}\n",
    )
    .unwrap();
    std::fs::write(tree.join("dist/bundle.js"), "\"old-search\"\n").unwrap();

    let output = gatehouse(&database_url)
        .args(["code-refs", tree.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let scan: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        scan["flags"],
        json!([
            { "key": "checkout", "references": [{ "file": "src/main.rs", "line": 2 }] },
            { "key": "new-checkout", "references": [{ "file": "src/checkout.tsx", "line": 1 }] },
        ])
    );
    assert_eq!(scan["unreferenced"], json!(["old-search"]), "dist/ is ignored");
    // The two sources: dist/ is ignored, and so are hidden files such as .gitignore.
    assert_eq!(scan["filesScanned"], 2, "{scan}");

    let output = gatehouse(&database_url)
        .args(["code-refs", tree.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("checkout (1 reference)\n  src/main.rs:2\n"),
        "{text}"
    );
    assert!(text.contains("files scanned): old-search\n"), "{text}");
}
