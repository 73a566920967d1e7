#!/usr/bin/env python3
"""Regenerates src/config/networks.txt, op-lite's table of built-in networks, from a git clone of
the superchain registry (github.com/ethereum-optimism/superchain-registry).

    python3 platform/networks.py REGISTRY_GIT_DIR [COMMIT] > src/config/networks.txt

COMMIT (default: the clone's HEAD) gives every mainnet and sepolia chain:
superchain/configs/{mainnet,sepolia}/<chain>.toml (since registry v2.0 each file carries its fork
times, superchain-wide ones already applied) and superchain/extra/addresses/addresses.json
(OptimismPortalProxy, SystemConfigProxy, UnsafeBlockSigner). Base Mainnet and Base Sepolia left
the registry in 0d9aefc4 (2026-04-27); they are read from its parent, BASE_COMMIT.

Names are op-node's: the chain file's stem, a dash, the superchain ("unichain-mainnet",
"soneium-minato-sepolia"). Values are copied as the registry states them; the rules op-node
applies when it turns a registry entry into a rollup config (Regolith at 0, the Bedrock channel
timeout of 300, the alt_da section) live in build.rs and src/config/networks.rs.

Needs only Python 3.11+ (tomllib) and git.
"""

import json
import subprocess
import sys
import tomllib

BASE_COMMIT = "5b055be4d294ce43814a44c8839d89b2436dc8aa"
SUPERCHAINS = ("mainnet", "sepolia")
FORKS = (
    "canyon",
    "delta",
    "ecotone",
    "fjord",
    "granite",
    "holocene",
    "pectra_blob_schedule",
    "isthmus",
    "jovian",
    "karst",
    "interop",
)
KNOWN_FORK_KEYS = {f + "_time" for f in FORKS} | {"keep_karst_upgrade_gas"}


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


def chain_files(repo, commit, superchain):
    out = git(repo, "ls-tree", "--name-only", f"{commit}:superchain/configs/{superchain}")
    return sorted(n[: -len(".toml")] for n in out.split() if n.endswith(".toml") and n != "superchain.toml")


def entry(repo, commit, superchain, stem, l1_chain_id, addresses):
    c = tomllib.loads(git(repo, "show", f"{commit}:superchain/configs/{superchain}/{stem}.toml"))
    chain_id = c["chain_id"]
    a = addresses[str(chain_id)]
    hf = c.get("hardforks", {})
    unknown = set(hf) - KNOWN_FORK_KEYS
    if unknown:
        sys.exit(f"{superchain}/{stem}.toml: unknown hardfork keys {sorted(unknown)}: teach networks.py and build.rs")
    g = c["genesis"]
    sc = g["system_config"]
    unknown = set(sc) - {"batcherAddress", "overhead", "scalar", "gasLimit"}
    if unknown:
        sys.exit(f"{superchain}/{stem}.toml: unknown genesis.system_config keys {sorted(unknown)}")
    op = c["optimism"]
    lines = [
        f"network {stem}-{superchain}",
        f"display {c['name']}",
        f"l1_chain_id {l1_chain_id}",
        f"l2_chain_id {chain_id}",
        f"block_time {c['block_time']}",
        f"seq_window_size {c['seq_window_size']}",
        f"max_sequencer_drift {c['max_sequencer_drift']}",
        f"genesis_l1 {g['l1']['number']} {g['l1']['hash']}",
        f"genesis_l2 {g['l2']['number']} {g['l2']['hash']}",
        f"genesis_l2_time {g['l2_time']}",
        f"batcher {sc['batcherAddress']}",
        f"overhead {sc['overhead']}",
        f"scalar {sc['scalar']}",
        f"gas_limit {sc['gasLimit']}",
        f"batch_inbox {c['batch_inbox_addr']}",
        f"deposit_contract {a['OptimismPortalProxy']}",
        f"system_config {a['SystemConfigProxy']}",
        f"unsafe_block_signer {a['UnsafeBlockSigner']}",
        f"eip1559 {op['eip1559_elasticity']} {op['eip1559_denominator']} {op['eip1559_denominator_canyon']}",
        "forks " + " ".join(f"{f}={hf[f + '_time']}" for f in FORKS if f + "_time" in hf),
    ]
    if hf.get("keep_karst_upgrade_gas"):
        lines.append("keep_karst_upgrade_gas")
    if "alt_da" in c:
        d = c["alt_da"]
        lines.append(
            "alt_da {} {} {} {}".format(
                d["da_commitment_type"],
                d["da_challenge_contract_address"],
                d["da_challenge_window"],
                d["da_resolve_window"],
            )
        )
    return chain_id, lines


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    repo = sys.argv[1]
    commit = git(repo, "rev-parse", sys.argv[2] if len(sys.argv) == 3 else "HEAD").strip()
    date = git(repo, "show", "-s", "--format=%cs", commit).strip()
    base_date = git(repo, "show", "-s", "--format=%cs", BASE_COMMIT).strip()
    blocks = []
    for source, only in ((commit, None), (BASE_COMMIT, "base")):
        addresses = json.loads(git(repo, "show", f"{source}:superchain/extra/addresses/addresses.json"))
        for superchain in SUPERCHAINS:
            sc = tomllib.loads(git(repo, "show", f"{source}:superchain/configs/{superchain}/superchain.toml"))
            for stem in chain_files(repo, source, superchain):
                if only is not None and stem != only:
                    continue
                if only is None and stem == "base":
                    sys.exit(f"base is back in the registry at {commit}: drop BASE_COMMIT")
                blocks.append(entry(repo, source, superchain, stem, sc["l1"]["chain_id"], addresses))
    blocks.sort(key=lambda b: b[1][0])
    print("# op-lite's built-in networks (`--network NAME`, `op-lite networks`), in op-lite's own format:")
    print("# one block per network, one `key value...` line per fact; build.rs compiles it into the binary.")
    print("# Public chain configuration from github.com/ethereum-optimism/superchain-registry:")
    print(f"#   {commit} ({date}): superchain/configs/{{mainnet,sepolia}}/*.toml and")
    print("#   superchain/extra/addresses/addresses.json (deposit_contract = OptimismPortalProxy,")
    print("#   system_config = SystemConfigProxy, unsafe_block_signer = UnsafeBlockSigner);")
    print(f"#   {BASE_COMMIT} ({base_date}): base-mainnet and base-sepolia, the last")
    print("#   commit before Base left the registry.")
    print("# Do not edit by hand; regenerate with: python3 platform/networks.py REGISTRY_GIT_DIR [COMMIT]")
    for _, lines in blocks:
        print()
        print("\n".join(lines))


if __name__ == "__main__":
    main()
