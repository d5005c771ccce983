"""SGLang's process-wide state on a CPU, for scripts run by the real-SGLang venv (realenv.py)
that construct SGLang's model classes: the probes, never pytest itself.

``SGLANG_USE_CPU_ENGINE=1`` must be in the environment before SGLang is first imported: SGLang
decides its platform at import time. The probes import this module at their top, before they set
it, so torch and SGLang are imported here only when called.
"""

from __future__ import annotations

import dataclasses
import types

from support.ports import free_port


def bootstrap_sglang_on_cpu(hidden_size: int = 64, dtype=None) -> None:
    """The distributed groups, global server args and DP-attention state SGLang's layers read
    while they are constructed (one rank, gloo, ``device="cpu"``)."""
    import torch

    from sglang.srt.distributed import init_distributed_environment, initialize_model_parallel
    from sglang.srt.layers.dp_attention import initialize_dp_attention
    from sglang.srt.server_args import ServerArgs, set_global_server_args_for_scheduler

    init_distributed_environment(
        world_size=1,
        rank=0,
        local_rank=0,
        distributed_init_method=f"tcp://127.0.0.1:{free_port()}",
        backend="gloo",
    )
    initialize_model_parallel(1, 1)

    # ServerArgs.__post_init__ would resolve and load a model config from a hub;
    # the field defaults are all the layers need.
    server_args = ServerArgs.__new__(ServerArgs)
    for field in dataclasses.fields(ServerArgs):
        if field.default is not dataclasses.MISSING:
            setattr(server_args, field.name, field.default)
        elif field.default_factory is not dataclasses.MISSING:
            setattr(server_args, field.name, field.default_factory())
    server_args.device = "cpu"
    set_global_server_args_for_scheduler(server_args)

    model_config = types.SimpleNamespace(hidden_size=hidden_size, dtype=dtype or torch.float32)
    initialize_dp_attention(server_args, model_config)
