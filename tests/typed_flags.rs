//! `gatehouse types`: the TypeScript it writes compiles with `tsc` against the real
//! `@reflag/node-sdk` (tests/sdk), types remote-config payloads, and makes a typo in a flag key a
//! compile error; the Rust it writes parses and names every flag.

mod common;

use std::path::Path;
use std::process::Command;

use common::{gatehouse, with_service, Fixture};
use gatehouse::config::Backend;
use gatehouse::service::Change;
use serde_json::json;

async fn seed(fx: &Fixture) {
    for key in ["new-checkout", "pricing-limits", "3d-view"] {
        fx.apply(common::new_flag(key)).await;
    }
    fx.apply(Change::SetRemoteConfig {
        flag: "pricing-limits".into(),
        environment: "production".into(),
        variants: serde_json::from_value(json!([
            { "key": "pro", "payload": { "maxSeats": 50, "plan": "pro", "addons": ["sso"] }, "companies": ["acme"] },
            { "key": "free", "payload": { "maxSeats": 3, "plan": "free" }, "isDefault": true }
        ]))
        .unwrap(),
        expected_version: None,
    })
    .await;
}

/// `tsc --noEmit` over `files` (name, text), written to a directory inside tests/sdk so that
/// `@reflag/node-sdk` resolves from its node_modules; the exit status and the diagnostics.
fn tsc(files: &[(&str, &str)]) -> (bool, String) {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk");
    let tsc = sdk.join("node_modules/.bin/tsc");
    assert!(tsc.exists(), "run `make node-tools` (npm ci in tests/sdk) first");
    let dir = tempfile::Builder::new()
        .prefix(".typecheck")
        .tempdir_in(&sdk)
        .unwrap();
    let mut args = vec![
        "--noEmit".to_string(),
        "--strict".into(),
        "--module".into(),
        "nodenext".into(),
        "--moduleResolution".into(),
        "nodenext".into(),
        "--target".into(),
        "es2022".into(),
    ];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
        args.push(dir.path().join(name).display().to_string());
    }
    let output = Command::new(&tsc).args(&args).current_dir(&sdk).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

const USES: &str = r#"import { ReflagClient } from "@reflag/node-sdk";

export function use(client: ReflagClient): number {
  const checkout: boolean = client.getFlag({ company: { id: "acme" } }, "new-checkout").isEnabled;
  const limits = client.getFlag({ company: { id: "acme" } }, "pricing-limits").config;
  const seats: number = limits.payload?.maxSeats ?? 0;
  const plan: string | undefined = limits.payload?.plan;
  return checkout && plan ? seats : 0;
}
"#;

const TYPO: &str = r#"import { ReflagClient } from "@reflag/node-sdk";

export function typo(client: ReflagClient): boolean {
  return client.getFlag({ company: { id: "acme" } }, "new-chekout").isEnabled;
}
"#;

const WRONG_PAYLOAD: &str = r#"import { ReflagClient } from "@reflag/node-sdk";

export function wrong(client: ReflagClient): string {
  const seats: string | undefined = client.getFlag({}, "pricing-limits").config.payload?.maxSeats;
  return seats ?? "";
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_typescript_compiles_against_the_node_sdk_and_catches_a_typo() {
    with_service(Backend::Sqlite, |fx| async move {
        seed(&fx).await;
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("types/flags.d.ts");
        let url = fx.db.url.to_string();
        let status = gatehouse(&url)
            .args(["types", "--lang", "typescript", "--output"])
            .arg(&file)
            .status()
            .unwrap();
        assert!(status.success());
        let types = std::fs::read_to_string(&file).unwrap();
        assert!(types.contains("declare module \"@reflag/node-sdk\""), "{types}");
        assert!(types.contains("\"new-checkout\": boolean;"), "{types}");
        assert!(
            types.contains("\"pricing-limits\": { config: { payload: PricingLimitsConfigPayload } };"),
            "{types}"
        );
        assert!(types.contains("\"addons\"?: string[];"), "{types}");

        let (ok, diagnostics) = tsc(&[("flags.d.ts", &types), ("use.ts", USES)]);
        assert!(
            ok,
            "the generated types and their use compile:\n{diagnostics}\n{types}"
        );
        let (ok, diagnostics) = tsc(&[("flags.d.ts", &types), ("typo.ts", TYPO)]);
        assert!(!ok, "a typo in a flag key must not compile");
        assert!(diagnostics.contains("new-chekout"), "{diagnostics}");
        let (ok, diagnostics) = tsc(&[("flags.d.ts", &types), ("wrong.ts", WRONG_PAYLOAD)]);
        assert!(!ok, "a payload field of the wrong type must not compile");
        assert!(
            diagnostics.contains("maxSeats") || diagnostics.contains("number"),
            "{diagnostics}"
        );
        // Without the generated file, any key goes: the check comes from the types.
        let (ok, diagnostics) = tsc(&[("typo.ts", TYPO)]);
        assert!(ok, "{diagnostics}");

        let rust = gatehouse(&url)
            .args(["types", "--lang", "rust"])
            .output()
            .unwrap();
        assert!(rust.status.success());
        let rust = String::from_utf8(rust.stdout).unwrap();
        assert!(
            rust.contains("FlagKey::NewCheckout => \"new-checkout\","),
            "{rust}"
        );
        assert!(rust.contains("FlagKey::Flag3dView => \"3d-view\","), "{rust}");
        assert!(rust.contains("pub struct PricingLimitsConfigPayload"), "{rust}");
        assert!(rust.contains("pub max_seats: i64,"), "{rust}");
        // It is Rust: the whole file parses, with an enum FlagKey and a payload struct.
        let file = syn::parse_file(&rust).unwrap_or_else(|e| panic!("the Rust does not parse: {e}\n{rust}"));
        let names: Vec<String> = file
            .items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Enum(e) => Some(e.ident.to_string()),
                syn::Item::Struct(s) => Some(s.ident.to_string()),
                _ => None,
            })
            .collect();
        assert!(
            names.contains(&"FlagKey".to_string())
                && names.contains(&"PricingLimitsConfigPayload".to_string()),
            "{names:?}"
        );
    })
    .await;
}
