"""Steps per second of Gymnasium's CartPole-v1 with random actions (the protocol of
envs/examples/cartpole_sps.rs): `steps` steps of `action_space.sample()`, resetting when an
episode ends, timed as a whole. Prints `steps_per_second <number>`."""

import sys
import time

import gymnasium as gym

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
env = gym.make("CartPole-v1")
env.reset(seed=0)
env.action_space.seed(0)
episodes = 0
start = time.perf_counter()
for _ in range(steps):
    _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    if terminated or truncated:
        env.reset()
        episodes += 1
secs = time.perf_counter() - start
print(f"{steps} steps, {episodes} episodes, {secs:.3f} s", file=sys.stderr)
print(f"steps_per_second {steps / secs:.0f}")
