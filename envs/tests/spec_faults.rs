//! User-reported faults in `make` and the maze generator, each pinned by a test: specs that
//! never returned, options that were silently accepted, and an `ENV_IDS` listing that did
//! not match the options `make` reads.

use std::collections::BTreeSet;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use policy_lab_envs::*;

/// `make(spec)`'s error message, or a failure if it succeeds or takes longer than `secs`.
fn make_err_within(spec: &str, secs: u64) -> String {
    let (tx, rx) = mpsc::channel();
    let owned = spec.to_string();
    thread::spawn(move || {
        let _ = tx.send(make(&owned).map(|_| ()));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(())) => panic!("make(\"{spec}\") should be an error"),
        Err(RecvTimeoutError::Timeout) => panic!("make(\"{spec}\") did not return within {secs}s"),
        Err(RecvTimeoutError::Disconnected) => panic!("make(\"{spec}\") panicked"),
    }
}

/// `make(spec)`'s error message, or a failure if it succeeds.
fn make_err(spec: &str) -> String {
    make_err_within(spec, 60)
}

/// Asserts that `msg` contains every one of `parts`.
fn assert_mentions(msg: &str, parts: &[&str]) {
    for part in parts {
        assert!(msg.contains(part), "{msg:?} should mention {part:?}");
    }
}

// Bug 1: a maze with no likely path, and huge sizes.

#[test]
fn maze_without_a_likely_path_fails_fast_with_a_clear_error() {
    let msg = make_err_within("Maze-v0:size=30,obstacle_prob=0.6", 60);
    assert_mentions(
        &msg,
        &["obstacle_prob", "0.6", "30x30", "try obstacle_prob <="],
    );
}

#[test]
fn huge_maze_sizes_are_refused_quickly_naming_the_allowed_range() {
    for (spec, key) in [
        ("Maze-v0:size=100000", "size=100000"),
        ("Maze-v0:rows=100000", "rows=100000"),
        ("Maze-v0:cols=65", "cols=65"),
        // 2^33: rows * cols overflowed (a panic in debug builds).
        ("Maze-v0:size=8589934592", "size=8589934592"),
    ] {
        let msg = make_err_within(spec, 10);
        assert_mentions(&msg, &[key, &format!("{MAX_MAZE_SIDE}")]);
    }
    assert!(generate_maze(&MazeConfig::new(1 << 33, 0)).is_err());
}

#[test]
fn the_default_maze_is_unchanged() {
    let (env, spec) = make("Maze-v0").unwrap();
    let map = [
        "SFF#FFF#", "FFFFFFFF", "FFF##FFF", "#FFFFFFF", "F#FFF##F", "FF#F#FFF", "######FF",
        "FFFFFF#G",
    ];
    assert_eq!(env.grid().unwrap().map(), map);
    assert_eq!(generate_maze(&MazeConfig::default()).unwrap(), map);
    assert_eq!(spec.max_episode_steps, Some(256));
    let (env, _) = make("Maze-v0:size=6,obstacle_prob=0.4").unwrap();
    let map = ["SFF###", "FFF##F", "F#FF#F", "FFFFF#", "F##FF#", "##FFFG"];
    assert_eq!(env.grid().unwrap().map(), map);
    // The largest allowed maze is built.
    let (env, _) = make(&format!("Maze-v0:size={MAX_MAZE_SIDE}")).unwrap();
    assert_eq!(env.grid().unwrap().nrow(), MAX_MAZE_SIDE);
}

// Bug 2: duplicate option keys.

#[test]
fn duplicate_options_are_an_error_naming_the_key() {
    assert_eq!(
        make_err("Maze-v0:size=10,size=12"),
        "invalid environment config: option 'size' of Maze-v0 is given twice"
    );
    assert_mentions(
        &make_err("FrozenLake-v1:is_slippery=false, is_slippery=true"),
        &["option 'is_slippery' of FrozenLake-v1 is given twice"],
    );
}

// Bug 3: ENV_IDS lists exactly the options `make` reads.

/// The option keys an `ENV_IDS` description lists in its `(options: ...)`.
fn listed_options(about: &str) -> BTreeSet<&str> {
    match about.split_once("(options: ") {
        None => BTreeSet::new(),
        Some((_, rest)) => rest
            .trim_end_matches(')')
            .split(", ")
            .map(|o| o.split([' ', '=']).next().unwrap())
            .collect(),
    }
}

/// A valid value for each option key of any environment.
const SAMPLE_VALUES: [(&str, &str); 14] = [
    ("map_name", "4x4"),
    ("is_slippery", "false"),
    ("size", "5"),
    ("rows", "5"),
    ("cols", "6"),
    ("seed", "1"),
    ("obstacle_prob", "0.2"),
    ("holes", "true"),
    ("goal_reward", "2"),
    ("step_penalty", "0.1"),
    ("arms", "3"),
    ("arms_seed", "1"),
    ("pulls", "2"),
    ("contexts", "3"),
];

#[test]
fn env_ids_list_exactly_the_options_make_reads() {
    for (id, about) in ENV_IDS {
        let listed = listed_options(about);
        for (key, value) in SAMPLE_VALUES {
            let result = make(&format!("{id}:{key}={value}"));
            if listed.contains(key) {
                if let Err(e) = result {
                    panic!("{id} lists option {key} but {key}={value} fails: {e}");
                }
            } else {
                let unknown = format!("{id} has no option '{key}'");
                assert!(
                    matches!(&result, Err(e) if e.to_string().contains(&unknown)),
                    "{id} reads option {key}, but its description does not list it: {about}"
                );
            }
        }
        let known: BTreeSet<&str> = SAMPLE_VALUES.iter().map(|(k, _)| *k).collect();
        assert!(listed.is_subset(&known), "{id}: {listed:?}");
    }
    let frozen = ENV_IDS
        .iter()
        .filter(|(id, _)| id.starts_with("FrozenLake"));
    for (_, about) in frozen {
        assert_mentions(about, &["map_name", "4x4", "8x8", "is_slippery"]);
    }
    let maze = ENV_IDS.iter().find(|(id, _)| *id == "Maze-v0").unwrap().1;
    assert_mentions(maze, &[&format!("size 2-{MAX_MAZE_SIDE}")]);
    let bandit = ENV_IDS
        .iter()
        .find(|(id, _)| *id == "BernoulliBandit-v0")
        .unwrap()
        .1;
    assert_mentions(bandit, &[&format!("arms 1-{MAX_ARMS}")]);
    let contextual = ENV_IDS
        .iter()
        .find(|(id, _)| *id == "ContextualBandit-v0")
        .unwrap()
        .1;
    assert_mentions(contextual, &[&format!("contexts 1-{MAX_CONTEXTS}")]);
}

// Bug 4: accepted but meaningless values.

#[test]
fn maze_sizes_below_two_cells_are_refused_naming_the_key() {
    for (spec, key, allowed) in [
        ("Maze-v0:size=0", "size=0", "2 to 64"),
        ("Maze-v0:size=1", "size=1", "2 to 64"),
        ("Maze-v0:size=-3", "size=-3", "2 to 64"),
        ("Maze-v0:rows=0", "rows=0", "1 to 64"),
        ("Maze-v0:cols=0", "cols=0", "1 to 64"),
    ] {
        assert_mentions(&make_err(spec), &[key, allowed]);
    }
    assert_mentions(
        &make_err("Maze-v0:rows=1,cols=1"),
        &["rows=1", "cols=1", "at least 2 cells"],
    );
    // A one-row corridor is a fine maze.
    assert!(make("Maze-v0:rows=1,cols=4,obstacle_prob=0").is_ok());
}

#[test]
fn non_finite_maze_rewards_are_refused_naming_the_key() {
    for (key, value) in [
        ("goal_reward", "inf"),
        ("goal_reward", "NaN"),
        ("step_penalty", "-inf"),
        ("step_penalty", "nan"),
    ] {
        let msg = make_err(&format!("Maze-v0:{key}={value}"));
        assert_mentions(&msg, &[&format!("{key}={value}"), "finite"]);
    }
    assert_mentions(
        &make_err("Maze-v0:obstacle_prob=NaN"),
        &["obstacle_prob=NaN", "obstacle_prob must be in [0, 0.75]"],
    );
}

#[test]
fn bandit_counts_are_refused_naming_key_value_and_range() {
    for (spec, parts) in [
        ("BernoulliBandit-v0:arms=0", ["arms=0", "at least one arm"]),
        ("GaussianBandit-v0:arms=0", ["arms=0", "at least one arm"]),
        ("BernoulliBandit-v0:pulls=0", ["pulls=0", "at least 1"]),
        (
            "GaussianBandit-v0:arms=1000000000000",
            ["arms=1000000000000", "1000"],
        ),
        (
            "ContextualBandit-v0:contexts=0",
            ["contexts=0", "at least one context"],
        ),
        (
            "ContextualBandit-v0:contexts=5000",
            ["contexts=5000", "1000"],
        ),
        ("ContextualBandit-v0:arms=1", ["arms=1", "at least 2 arms"]),
        ("ContextualBandit-v0:pulls=0", ["pulls=0", "at least 1"]),
    ] {
        assert_mentions(&make_err_within(spec, 10), &parts);
    }
}

#[test]
fn frozen_lake_map_errors_name_the_key() {
    assert_mentions(
        &make_err("FrozenLake-v1:map_name=5x5"),
        &["map_name", "5x5", "4x4", "8x8"],
    );
}
