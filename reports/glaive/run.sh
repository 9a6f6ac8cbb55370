#!/usr/bin/env bash
# reports/glaive: base, LoRA and CITI on SmolLM2-135M-Instruct (the default model, Q4_1 GGUF)
# with a user's own tool-calling file, LLaMA-Factory's glaive demo (300 ShareGPT conversations).
# The same held-out fifth of the conversations (--eval-fraction 0.2, a fixed seeded choice) is
# left out of importance and training in every step and evaluated for every model.
#
#   CITI_DATA_DIR=/path/to/data OUT=runs/glaive bash reports/glaive/run.sh
#
# Every step resumes: a finished evaluation task is skipped and training continues with --resume.
# The sizes below are the ones the committed report ran (2 shared CPU cores, about 1 hour).
set -euo pipefail

CITI=${CITI:-citi}
PYTHON=${PYTHON:-python}
OUT=${OUT:-runs/glaive}
DATA=glaive_toolcall/glaive_toolcall_en_demo.json
SPLIT="--tool-data $DATA --eval-fraction 0.2"
GENERAL="--general-data instruction=alpaca --general-data math=gsm8k"
TOOL_LIMIT=${TOOL_LIMIT:-64}        # training conversations (of the 240 kept), seeded sample
MIX=${MIX:-8}                       # CITI: general examples per general source
MAX_LENGTH=${MAX_LENGTH:-768}       # training tokens per conversation (early turns dropped beyond)
TRIVIAQA=${TRIVIAQA:-200}           # triviaqa-mc questions
LEAK=${LEAK:-32}                    # leak-tool general prompts
mkdir -p "$OUT"

resume() { [ -f "$1/config.yaml" ] && echo --resume || true; }  # continue a killed run

# 1. Importance: the tool ability on the kept conversations, general abilities on named data.
[ -f "$OUT/importance/selection.json" ] ||
  $CITI importance $SPLIT $GENERAL --samples 16 --max-length 1024 --out "$OUT/importance"

# 2. LoRA on the tool data alone, the paper's baseline.
$CITI train --method lora $SPLIT --tool-limit "$TOOL_LIMIT" --max-length "$MAX_LENGTH" \
  --batch-size 2 --grad-accum 2 --epochs 1 --save-every 8 --out "$OUT/lora" $(resume "$OUT/lora")

# 3. CITI (router pre-training, MOLoRA, UCO) on the tool data mixed with general data. MOLoRA
#    alpha 32: what the `cpu` preset's sweep chose for this model (reports/cpu); the authors'
#    alpha 2 barely moved SmolLM2 in reports/smol. Not swept again on this data. A quarter epoch
#    of router pre-training and of UCO around one MOLoRA epoch, and the held-out loss logged
#    between stages on 16 conversations (CPU time).
$CITI train --method citi --selection "$OUT/importance/selection.json" $SPLIT $GENERAL \
  --tool-limit "$TOOL_LIMIT" --mix-per-source "$MIX" --max-length "$MAX_LENGTH" --alpha 32 \
  --batch-size 2 --grad-accum 2 --epochs rp=0.25,mi=1,uco=0.25 --eval-limit 16 --save-every 8 \
  --out "$OUT/citi" $(resume "$OUT/citi")

# 4. The held-out conversations that call a tool, up to their last call (heldout.py says why),
#    and general measures beside them.
[ -f "$OUT/heldout-calls.jsonl" ] ||
  $PYTHON reports/glaive/heldout.py "${CITI_DATA_DIR:?set CITI_DATA_DIR}" "$OUT/heldout-calls.jsonl"
for run in base lora citi; do
  adapter=$([ $run = base ] || echo "--adapter $OUT/$run")
  $CITI eval --tasks tool-calls --eval-data "$OUT/heldout-calls.jsonl" $adapter --out "$OUT/eval-$run"
  $CITI eval --tasks triviaqa-mc --limit "$TRIVIAQA" $adapter --out "$OUT/eval-$run"
  $CITI eval --tasks leak-tool --limit "$LEAK" $adapter --out "$OUT/eval-$run"
done

# 5. Paired differences against base (citi.reproduce.stats) into the committed results JSON.
$PYTHON reports/glaive/summarize.py "$OUT" --out reports/glaive/results.json
