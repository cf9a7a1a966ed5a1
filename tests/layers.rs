//! The house drawn from the code: every `crate::` (and `super::`) path in `src/` is an edge
//! from its file to the module it names, and the layering rule of CONTRIBUTING.md holds:
//! imports only point down (`main.rs` -> `run/` -> `algos/` -> `lm/` -> `core/`, with
//! `kernels/` beside the core and below it), and no two files import each other, directly or
//! round a longer circle. Doc comments and the `#[cfg(test)]` modules at the ends of files are
//! left out (a test may look anywhere).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of `src/` (`core::nn`, `run::lm`, ...) and its file's code, without comments
/// and without its test module.
fn modules() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = BTreeMap::new();
    let mut folders = vec![root.clone()];
    while let Some(dir) = folders.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().with_extension("");
            let mut name = rel.to_string_lossy().replace('/', "::");
            if let Some(parent) = name.strip_suffix("::mod") {
                name = parent.to_string();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: Vec<&str> = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            found.insert(name, code.join("\n"));
        }
    }
    found
}

/// The modules `code` (the file of `module`) names through `crate::` or `super::` paths.
fn imports(module: &str, code: &str, modules: &BTreeSet<String>) -> Vec<String> {
    // `super::` is the module above the file's (`run/lm/rl.rs`: `run::lm`; `run/lm/mod.rs`:
    // `run`).
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    let code = code.replace("super::", &format!("crate::{parent}::"));
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        // The longest `a::b::c` path that is a module: `crate::lm::model::Transformer` names
        // `lm::model`. A group (`crate::lm::{model::X, tokenizer::Y}`) names each member.
        let mut stems = vec![String::new()];
        let head: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        if head.ends_with("::") && rest[head.len()..].starts_with('{') {
            let group = &rest[head.len() + 1..];
            let end = group.find('}').unwrap_or(group.len());
            stems = group[..end]
                .split(',')
                .map(|m| format!("{head}{}", m.trim()))
                .collect();
        } else {
            stems[0] = head;
        }
        for stem in stems {
            let parts: Vec<&str> = stem.split("::").filter(|p| !p.is_empty()).collect();
            for n in (1..=parts.len()).rev() {
                let candidate = parts[..n].join("::");
                if modules.contains(&candidate) {
                    if candidate != module && !module.starts_with(&format!("{candidate}::")) {
                        out.insert(candidate);
                    }
                    break;
                }
            }
        }
    }
    out.into_iter().collect()
}

/// The layer of a module: higher layers may import lower ones only. `None`: outside the rule
/// (`lib`, `backend`, `agents`, `main`).
fn layer(module: &str) -> Option<u8> {
    match module.split("::").next()? {
        "core" | "kernels" => Some(0),
        "lm" => Some(1),
        "algos" => Some(2),
        "run" => Some(3),
        _ => None,
    }
}

/// `file -> the modules it imports`, for every file of `src/`.
fn house() -> BTreeMap<String, Vec<String>> {
    let files = modules();
    let names: BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(m, code)| (m.clone(), imports(m, code, &names)))
        .collect()
}

#[test]
fn imports_only_point_down() {
    let house = house();
    assert!(house.len() > 50, "read {} files", house.len());
    let mut upward = Vec::new();
    for (from, tos) in &house {
        for to in tos {
            if let (Some(a), Some(b)) = (layer(from), layer(to)) {
                if b > a {
                    upward.push(format!("{from} -> {to}"));
                }
            }
        }
    }
    // The kernels sit beside the core and below it: they name no module of the core.
    for (from, tos) in &house {
        if from.starts_with("kernels") {
            for to in tos.iter().filter(|t| t.starts_with("core")) {
                upward.push(format!("{from} -> {to} (the kernels are below the core)"));
            }
        }
    }
    assert!(upward.is_empty(), "imports that point up: {upward:#?}");
}

#[test]
fn no_two_files_import_each_other_even_round_a_circle() {
    let house = house();
    // Tarjan's strongly connected components: a component of more than one file is a circle.
    struct Walk<'a> {
        house: &'a BTreeMap<String, Vec<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        circles: Vec<Vec<&'a str>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.house.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut circle = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    circle.push(w);
                    if w == v {
                        break;
                    }
                }
                if circle.len() > 1 {
                    self.circles.push(circle);
                }
            }
        }
    }
    let mut walk = Walk {
        house: &house,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        circles: Vec::new(),
    };
    for m in house.keys() {
        if !walk.index.contains_key(m.as_str()) {
            walk.visit(m);
        }
    }
    assert!(
        walk.circles.is_empty(),
        "import circles: {:?}",
        walk.circles
    );
}

/// The test reads what it should: it finds the edges the code is known to have.
#[test]
fn the_house_has_the_edges_the_code_has() {
    let house = house();
    let has = |from: &str, to: &str| house[from].iter().any(|t| t == to);
    assert!(has("algos::ppo", "kernels"), "{:?}", house["algos::ppo"]);
    assert!(has("lm::infer", "lm::model"), "{:?}", house["lm::infer"]);
    assert!(has("run::lm::rl", "algos"), "{:?}", house["run::lm::rl"]);
    assert!(
        has("kernels::gelu", "kernels::host"),
        "{:?}",
        house["kernels::gelu"]
    );
}
