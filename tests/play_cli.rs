//! The `policy-lab` command line and the `play` job behind it.

use std::process::Command;

use policy_lab::backend::{check_device, Device, DeviceError};
use policy_lab::envs::render::{GridPicture, RenderError};
use policy_lab::envs::GridWorld;
use policy_lab::run::play::{play, AgentKind, PlayConfig, RenderMode};

fn config(
    env: &str,
    agent: AgentKind,
    episodes: usize,
    render: RenderMode,
    out: &std::path::Path,
) -> PlayConfig {
    PlayConfig {
        env: env.into(),
        agent,
        episodes,
        seed: 0,
        render,
        out: out.to_path_buf(),
    }
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("policy-lab-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn heuristics_beat_random_play() {
    let dir = tmp("heuristic");
    let mut log = Vec::new();
    let (cart, _) = play(
        &config(
            "CartPole-v1",
            AgentKind::Heuristic,
            3,
            RenderMode::None,
            &dir,
        ),
        &mut log,
    )
    .unwrap();
    assert!(
        cart.iter().all(|e| e.ret == 500.0 && !e.terminated),
        "{cart:?}"
    );
    let (random, _) = play(
        &config("CartPole-v1", AgentKind::Random, 20, RenderMode::None, &dir),
        &mut log,
    )
    .unwrap();
    let mean = random.iter().map(|e| e.ret).sum::<f64>() / 20.0;
    assert!(
        (10.0..40.0).contains(&mean),
        "random CartPole averages about 22 steps, got {mean}"
    );

    let (lake, _) = play(
        &config(
            "FrozenLake-v1",
            AgentKind::Heuristic,
            300,
            RenderMode::None,
            &dir,
        ),
        &mut log,
    )
    .unwrap();
    let wins = lake.iter().filter(|e| e.ret > 0.0).count();
    let (lake_r, _) = play(
        &config(
            "FrozenLake-v1",
            AgentKind::Random,
            300,
            RenderMode::None,
            &dir,
        ),
        &mut log,
    )
    .unwrap();
    let wins_r = lake_r.iter().filter(|e| e.ret > 0.0).count();
    assert!(
        wins > 180 && wins_r < 20,
        "value iteration {wins}/300, random {wins_r}/300"
    );

    // UCB's regret grows much more slowly than a random agent's.
    let regret = |agent| {
        let (eps, _) = play(
            &config(
                "BernoulliBandit-v0:arms_seed=0",
                agent,
                2000,
                RenderMode::None,
                &dir,
            ),
            &mut Vec::new(),
        )
        .unwrap();
        eps.last().unwrap().cumulative_regret.unwrap()
    };
    let (ucb, random) = (regret(AgentKind::Heuristic), regret(AgentKind::Random));
    assert!(
        ucb < 0.25 * random,
        "UCB regret {ucb}, random regret {random}"
    );
}

#[test]
fn ansi_and_image_rendering() {
    let dir = tmp("render");
    let mut log = Vec::new();
    play(
        &config(
            "FrozenLake-v1:is_slippery=false",
            AgentKind::Heuristic,
            1,
            RenderMode::Ansi,
            &dir,
        ),
        &mut log,
    )
    .unwrap();
    let text = String::from_utf8(log).unwrap();
    assert!(
        text.contains("\x1b[41mS\x1b[0mFFF\nFHFH\nFFFH\nHFFG"),
        "{text}"
    );
    assert!(text.contains("(Right)") || text.contains("(Down)"));
    assert!(
        text.contains("episode   0: return    1.000  length    6  terminated"),
        "{text}"
    );

    for env in ["Maze-v0:size=10,seed=4", "CartPole-v1"] {
        let (_, files) = play(
            &config(env, AgentKind::Heuristic, 2, RenderMode::Image, &dir),
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(files.len(), 4);
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            if f.extension().unwrap() == "png" {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", f.display());
                assert!(bytes.len() > 1000);
            } else {
                let svg = String::from_utf8(bytes).unwrap();
                assert!(
                    svg.starts_with("<svg") && svg.contains("<rect") && svg.contains("<polyline"),
                    "{}",
                    f.display()
                );
            }
        }
    }
}

#[test]
fn pictures_refuse_overlays_of_the_wrong_size() {
    let lake = GridWorld::frozen_lake("4x4", true).unwrap();
    let err = GridPicture::new(&lake)
        .values(&[0.0; 5])
        .try_svg()
        .unwrap_err();
    assert!(matches!(
        err,
        RenderError::Size {
            got: 5,
            expected: 16
        }
    ));
    let (values, policy) = lake.value_iteration(0.9, 1e-9);
    let svg = GridPicture::new(&lake)
        .values(&values)
        .greedy_policy(&policy)
        .try_svg()
        .unwrap();
    // One arrow (a polygon head) per non-terminal free cell: 16 cells - 4 holes - 1 goal.
    assert_eq!(svg.matches("<polygon").count(), 11);
}

#[test]
fn devices() {
    assert_eq!(
        "tpu".parse::<Device>(),
        Err(DeviceError::Unknown("tpu".into()))
    );
    assert_eq!("CPU".parse::<Device>(), Ok(Device::Cpu));
    if !cfg!(feature = "wgpu") {
        let err = "wgpu".parse::<Device>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "this build has no wgpu backend; rebuild with `--features wgpu`"
        );
    }
    if !cfg!(feature = "wgpu") {
        // Past the parser too: the one backend switch refuses a backend it was not built with.
        assert_eq!(
            check_device(Device::Wgpu),
            Err(DeviceError::NotBuilt("wgpu"))
        );
    }
    let value = check_device(Device::Cpu).unwrap();
    assert!(
        value.is_finite() && value > 0.0,
        "sum(A A^T) is a sum of squares: {value}"
    );
}

#[test]
fn the_binary_explains_bad_input() {
    let bin = env!("CARGO_BIN_EXE_policy-lab");
    let out = Command::new(bin)
        .args(["play", "--env", "Pong-v5", "--render", "none"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown environment id 'Pong-v5'; known ids are: CartPole-v1, FrozenLake-v1"),
        "{err}"
    );

    let out = Command::new(bin).arg("envs").output().unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listing.lines().count(), policy_lab::envs::ENV_IDS.len());

    let dir = tmp("bin");
    let out = Command::new(bin)
        .args([
            "play",
            "--env",
            "Maze-v0:size=5",
            "--episodes",
            "1",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("episode_000.png").exists() && dir.join("episode_000.svg").exists());
}
