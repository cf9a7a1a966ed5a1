"""PPO or TRPO on CartPole-v1 with Stable-Baselines3 (TRPO from sb3-contrib), set up with the
hyperparameters policy-lab defaults to (CleanRL's for PPO, sb3-contrib's for TRPO): the SB3
side of scripts/bench_vs_sb3.sh.

    python3 scripts/sb3_cartpole.py [ppo|trpo] [total_steps] [seed]

Prints steps_per_second, and the wall time and steps at which the mean return of the last
20 training episodes first reached 475 (reached_475_s, reached_475_steps).
"""

import sys
import time

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

algo = sys.argv[1] if len(sys.argv) > 1 else "ppo"
total = int(sys.argv[2]) if len(sys.argv) > 2 else 500_000
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1


class Reach475(BaseCallback):
    def __init__(self):
        super().__init__()
        self.returns = []
        self.reached = None
        self.start = time.perf_counter()

    def _on_step(self):
        for info in self.locals["infos"]:
            if "episode" in info:
                self.returns.append(info["episode"]["r"])
        if self.reached is None and len(self.returns) >= 20 and sum(self.returns[-20:]) / 20 >= 475:
            self.reached = (time.perf_counter() - self.start, self.num_timesteps)
        return True


# Separate 64-64 tanh actor and critic, orthogonal init: SB3's MlpPolicy, as policy-lab builds it.
net = dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.Tanh)
if algo == "ppo":
    # CleanRL's ppo.py defaults (policy-lab's PpoConfig::default()).
    env = make_vec_env("CartPole-v1", n_envs=4, seed=seed)
    model = PPO(
        "MlpPolicy",
        env,
        learning_rate=lambda frac: 2.5e-4 * frac,
        n_steps=128,
        batch_size=128,
        n_epochs=4,
        gamma=0.99,
        gae_lambda=0.95,
        clip_range=0.2,
        clip_range_vf=0.2,
        normalize_advantage=True,
        ent_coef=0.01,
        vf_coef=0.5,
        max_grad_norm=0.5,
        policy_kwargs=dict(**net, optimizer_kwargs=dict(eps=1e-5)),
        seed=seed,
        device="cpu",
        verbose=0,
    )
elif algo == "trpo":
    from sb3_contrib import TRPO

    # sb3-contrib's TRPO defaults, on policy-lab's TrpoConfig::default() batch (4 envs x 256).
    env = make_vec_env("CartPole-v1", n_envs=4, seed=seed)
    model = TRPO(
        "MlpPolicy",
        env,
        learning_rate=1e-3,
        n_steps=256,
        batch_size=128,
        gamma=0.99,
        gae_lambda=0.95,
        cg_max_steps=15,
        cg_damping=0.1,
        line_search_shrinking_factor=0.8,
        line_search_max_iter=10,
        n_critic_updates=10,
        normalize_advantage=True,
        target_kl=0.01,
        policy_kwargs=net,
        seed=seed,
        device="cpu",
        verbose=0,
    )
else:
    sys.exit(f"sb3_cartpole.py runs ppo or trpo, not {algo}")

callback = Reach475()
start = time.perf_counter()
model.learn(total_timesteps=total, callback=callback)
secs = time.perf_counter() - start
print(f"steps_per_second {model.num_timesteps / secs:.0f}")
print(f"total_s {secs:.2f}")
if callback.reached:
    print(f"reached_475_s {callback.reached[0]:.2f}\nreached_475_steps {callback.reached[1]}")
else:
    print("reached_475_s never\nreached_475_steps never")
