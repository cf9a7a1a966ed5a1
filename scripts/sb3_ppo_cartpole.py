"""PPO on CartPole-v1 with Stable-Baselines3, set up with CleanRL's hyperparameters (the
settings policy-lab's PPO defaults to): the SB3 side of scripts/bench_ppo_vs_sb3.sh.

    python3 scripts/sb3_ppo_cartpole.py [total_steps] [seed]

Prints steps_per_second, and the wall time and steps at which the mean return of the last
20 training episodes first reached 475 (reached_475_s, reached_475_steps).
"""

import sys
import time

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

total = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1


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
    policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.Tanh, optimizer_kwargs=dict(eps=1e-5)),
    seed=seed,
    device="cpu",
    verbose=0,
)
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
