"""Test support, one package for every suite (named by what each module gives):

- `redis_server`: a real redis-server on a free port (or REDIS_URL, or a container);
- `wait`: wait on a condition with a deadline (never sleep-and-hope);
- `processes`: `python -m tgworkers run` as a real subprocess, signalled;
- `jobs`: the job types the engine tests run (they log each run to Redis);
- `engine_state`: what a queue holds now (ready, pending, delayed, runs);
- `cli_runner`: run the CLI as a user does, and fill a DLQ in bulk;
- `admin_http`: admin tokens and JWTs, and the app over `httpx.ASGITransport`;
- `config_server`: a real HTTP config service for hot reload;
- `fake_peers`: peer clients pointed at the fake peers on loopback;
- `platform_jobs`: a worker running the platform's processors against the fake peers;
- `telemetry_jobs`: a job type that calls a peer (the trace tests' subject);
- `tcp_proxy`: a TCP proxy between workers and Redis (latency, resets, a black hole).
"""
