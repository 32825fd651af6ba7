//! The architecture the README describes, checked on the source itself:
//!
//! * no two files import each other, directly or around a loop (every `use` and every `crate::`,
//!   `super::` or `self::` path counts, resolved to the file of the module it names);
//! * the admin UI and the public API never reach the store (the module is private to the service,
//!   so this only restates what the compiler already refuses);
//! * server functions are thin: no body longer than [`SERVER_FN_MAX_LINES`] lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// The longest body a server function may have, in lines.
const SERVER_FN_MAX_LINES: usize = 15;

fn src() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
}

/// A module of the crate: its path (`["crate", "service", "flags"]`) and the file it lives in.
struct Module {
    path: Vec<String>,
    file: PathBuf,
}

/// Every module of the crate, found by following `mod` items from `lib.rs` (with their `#[path]`
/// attributes); inline modules belong to the file they are written in.
fn modules() -> Vec<Module> {
    let mut found = Vec::new();
    walk(&src().join("lib.rs"), vec!["crate".into()], true, &mut found);
    found
}

fn walk(file: &Path, path: Vec<String>, owns_directory: bool, found: &mut Vec<Module>) {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    found.push(Module {
        path: path.clone(),
        file: file.to_path_buf(),
    });
    // Children of `lib.rs` and `mod.rs` sit beside them; children of `a.rs` in `a/`.
    let directory = if owns_directory {
        file.parent().unwrap().to_path_buf()
    } else {
        file.with_extension("")
    };
    walk_items(&parsed.items, &path, &directory, file, found);
}

fn walk_items(items: &[syn::Item], path: &[String], directory: &Path, file: &Path, found: &mut Vec<Module>) {
    for item in items {
        let syn::Item::Mod(module) = item else { continue };
        let mut child = path.to_vec();
        child.push(module.ident.to_string());
        if let Some((_, items)) = &module.content {
            found.push(Module {
                path: child.clone(),
                file: file.to_path_buf(),
            });
            walk_items(
                items,
                &child,
                &directory.join(module.ident.to_string()),
                file,
                found,
            );
            continue;
        }
        let explicit = module.attrs.iter().find_map(|attr| {
            let syn::Meta::NameValue(meta) = &attr.meta else {
                return None;
            };
            if !meta.path.is_ident("path") {
                return None;
            }
            match &meta.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(text),
                    ..
                }) => Some(text.value()),
                _ => None,
            }
        });
        let (child_file, owns) = match explicit {
            Some(relative) => {
                let target = directory.join(relative);
                let owns = target.file_name().is_some_and(|n| n == "mod.rs");
                (target, owns)
            }
            None => {
                let flat = directory.join(format!("{}.rs", module.ident));
                if flat.exists() {
                    (flat, false)
                } else {
                    (directory.join(module.ident.to_string()).join("mod.rs"), true)
                }
            }
        };
        walk(&child_file, child, owns, found);
    }
}

/// Collects the module paths a file refers to, each made absolute (`crate::…`).
struct References<'m> {
    /// The module the code being visited is in.
    scope: Vec<String>,
    found: BTreeSet<Vec<String>>,
    /// Every module of the crate, to tell a path relative to the scope (`flags::Thing` in the
    /// module that declares `flags`) from an outside crate's.
    modules: &'m BTreeMap<Vec<String>, PathBuf>,
}

impl References<'_> {
    fn absolute(&self, segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        let mut path = match first.as_str() {
            "crate" => vec!["crate".to_string()],
            "self" => self.scope.clone(),
            "super" => self.scope[..self.scope.len().saturating_sub(1)].to_vec(),
            // A lone name is a local item or variable; `child::item` may name a child module.
            _ if segments.len() < 2 => return None,
            child => {
                let mut relative = self.scope.clone();
                relative.push(child.to_string());
                if !self.modules.contains_key(&relative) {
                    return None;
                }
                let mut path = self.scope.clone();
                path.extend(segments.iter().cloned());
                return Some(path);
            }
        };
        let mut rest = &segments[1..];
        while rest.first().map(String::as_str) == Some("super") {
            path.pop();
            rest = &rest[1..];
        }
        path.extend(rest.iter().cloned());
        Some(path)
    }

    fn add(&mut self, segments: Vec<String>) {
        if let Some(path) = self.absolute(&segments) {
            self.found.insert(path);
        }
    }

    fn use_tree(&mut self, prefix: Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                let mut next = prefix;
                next.push(p.ident.to_string());
                self.use_tree(next, &p.tree);
            }
            syn::UseTree::Name(n) => {
                let mut path = prefix;
                path.push(n.ident.to_string());
                self.add(path);
            }
            syn::UseTree::Rename(r) => {
                let mut path = prefix;
                path.push(r.ident.to_string());
                self.add(path);
            }
            syn::UseTree::Glob(_) => self.add(prefix),
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(prefix.clone(), tree);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for References<'_> {
    fn visit_item_mod(&mut self, module: &'ast syn::ItemMod) {
        if module.content.is_some() {
            self.scope.push(module.ident.to_string());
            syn::visit::visit_item_mod(self, module);
            self.scope.pop();
        }
    }

    /// `pub(crate)` and `pub(super)` name who may see an item, not what it uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.add(segments);
        syn::visit::visit_path(self, path);
    }
}

/// The file each module lives in, by module path.
fn files_by_module(modules: &[Module]) -> BTreeMap<Vec<String>, PathBuf> {
    modules.iter().map(|m| (m.path.clone(), m.file.clone())).collect()
}

/// The file of the deepest module `path` starts with.
fn file_of(path: &[String], by_module: &BTreeMap<Vec<String>, PathBuf>) -> Option<PathBuf> {
    (1..=path.len())
        .rev()
        .find_map(|n| by_module.get(&path[..n]).cloned())
}

/// Every file's imports: file → the files it refers to.
fn import_graph() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let modules = modules();
    let by_module = files_by_module(&modules);
    let mut graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    // A file is visited once, from the module it defines (inline modules come along).
    for module in modules.iter().filter(|m| {
        by_module
            .iter()
            .find(|(_, file)| **file == m.file)
            .is_some_and(|(path, _)| *path == m.path)
    }) {
        let text = std::fs::read_to_string(&module.file).unwrap();
        let parsed = syn::parse_file(&text).unwrap();
        let mut references = References {
            scope: module.path.clone(),
            found: BTreeSet::new(),
            modules: &by_module,
        };
        references.visit_file(&parsed);
        let targets = graph.entry(module.file.clone()).or_default();
        for path in references.found {
            if let Some(file) = file_of(&path, &by_module) {
                if file != module.file {
                    targets.insert(file);
                }
            }
        }
    }
    graph
}

/// Strongly connected components with more than one file (Tarjan's algorithm).
fn loops(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct State<'g> {
        graph: &'g BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'g PathBuf, usize>,
        low: BTreeMap<&'g PathBuf, usize>,
        stack: Vec<&'g PathBuf>,
        on_stack: BTreeSet<&'g PathBuf>,
        next: usize,
        found: Vec<Vec<PathBuf>>,
    }
    fn connect<'g>(state: &mut State<'g>, node: &'g PathBuf) {
        state.index.insert(node, state.next);
        state.low.insert(node, state.next);
        state.next += 1;
        state.stack.push(node);
        state.on_stack.insert(node);
        let graph = state.graph;
        for target in graph.get(node).into_iter().flatten() {
            if !state.index.contains_key(target) {
                connect(state, target);
                let low = state.low[node].min(state.low[target]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(target) {
                let low = state.low[node].min(state.index[target]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.push(member.clone());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node) {
            connect(&mut state, node);
        }
    }
    state.found
}

fn relative(path: &Path) -> String {
    path.strip_prefix(src()).unwrap_or(path).display().to_string()
}

#[test]
fn no_two_files_import_each_other() {
    let graph = import_graph();
    assert!(graph.len() > 60, "the walk found only {} files", graph.len());
    let found = loops(&graph);
    let described: Vec<Vec<String>> = found
        .iter()
        .map(|component| component.iter().map(|f| relative(f)).collect())
        .collect();
    assert!(described.is_empty(), "import loops between files: {described:#?}");
}

#[test]
fn the_loop_check_finds_a_loop_when_there_is_one() {
    let mut graph = import_graph();
    let a = src().join("ui/flags.rs");
    let b = src().join("service/mod.rs");
    assert!(graph[&a].contains(&b), "the UI's flags page imports the service");
    graph.get_mut(&b).unwrap().insert(a.clone());
    assert_eq!(loops(&graph).len(), 1);
}

#[test]
fn the_admin_ui_and_the_public_api_never_reach_the_store() {
    let graph = import_graph();
    let store = src().join("store");
    for (file, targets) in &graph {
        let name = relative(file);
        if name.starts_with("ui/") || name.starts_with("api/") {
            let reached: Vec<String> = targets
                .iter()
                .filter(|t| t.starts_with(&store))
                .map(|t| relative(t))
                .collect();
            assert!(reached.is_empty(), "{name} uses the store: {reached:?}");
        }
    }
}

#[test]
fn server_functions_are_thin() {
    let mut checked = 0;
    let mut long = Vec::new();
    for entry in std::fs::read_dir(src().join("ui")).unwrap() {
        let file = entry.unwrap().path();
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with("#[server(") {
                continue;
            }
            // The body starts after the signature's last line (the first ending in `{`) and ends
            // at the first line that is a lone `}` (server functions are top-level items).
            let open = (i..lines.len()).find(|&j| lines[j].ends_with('{')).unwrap();
            let close = (open..lines.len()).find(|&j| lines[j] == "}").unwrap();
            let body = close - open - 1;
            checked += 1;
            if body > SERVER_FN_MAX_LINES {
                long.push(format!("{}:{} has {body} lines", relative(&file), i + 1));
            }
        }
    }
    assert!(checked > 40, "found only {checked} server functions");
    assert!(
        long.is_empty(),
        "server functions longer than {SERVER_FN_MAX_LINES} lines: {long:#?}"
    );
}
