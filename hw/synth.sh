#!/usr/bin/env bash
# Synthesizes each hw/ kernel with yosys synth_xilinx (7-series primitives) and writes its resource
# counts to hw/reports/<kernel>.txt and a table of all of them to hw/reports/summary.txt.
# Usage: hw/synth.sh [kernel ...]   (default: all kernels). Needs yosys on PATH.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rtl="$here/rtl"
reports="$here/reports"
kernels=("$@")
if ((${#kernels[@]} == 0)); then
  kernels=(crc32c_stream tally_quorum resolve_lww tally_ctrl_regs)
fi
command -v yosys >/dev/null || { echo "synth.sh: yosys not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
mkdir -p "$reports"
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

# Sums the cell counts of a yosys `stat` block whose cell names match a regex.
count_cells() {
  local stat_file=$1 regex=$2
  awk -v re="$regex" '$1 ~ "^" re "$" && $2 ~ /^[0-9]+$/ { n += $2 } END { print n + 0 }' "$stat_file"
}

for k in "${kernels[@]}"; do
  [[ -f "$rtl/$k.sv" ]] || { echo "synth.sh: no such kernel $rtl/$k.sv" >&2; exit 1; }
  echo "synth.sh: $k (yosys synth_xilinx; this can take minutes)"
  start_s=$(date +%s)
  (cd "$rtl" && yosys -q -l "$log_dir/$k.log" -p "
    read_verilog -sv -I$rtl tally_stream_fifo.sv $k.sv
    synth_xilinx -flatten -top $k
    tee -o $log_dir/$k.stat stat
  " >/dev/null)
  elapsed_s=$(( $(date +%s) - start_s ))
  stat="$log_dir/$k.stat"
  lut=$(count_cells "$stat" 'LUT[1-6]')
  lutram=$(count_cells "$stat" 'RAM(32|64|128|256)[XM0-9A-Z]*')
  ff=$(count_cells "$stat" 'FD[A-Z]*')
  bram=$(count_cells "$stat" 'RAMB(18|36)[A-Z0-9]*')
  dsp=$(count_cells "$stat" 'DSP48E[12]?')
  carry=$(count_cells "$stat" 'CARRY[48]')
  {
    echo "# $k: yosys $(yosys -V | awk '{print $2}') synth_xilinx -flatten (family xc7), $(date -u +%Y-%m-%d)"
    echo "# Regenerate with: make hw-report   (or hw/synth.sh $k)"
    echo "LUT $lut"
    echo "LUTRAM $lutram"
    echo "FF $ff"
    echo "BRAM $bram"
    echo "DSP $dsp"
    echo "CARRY $carry"
    echo "synth_seconds $elapsed_s"
    echo
    echo "# Full yosys stat:"
    cat "$stat"
  } > "$reports/$k.txt"
  echo "synth.sh: $k LUT=$lut LUTRAM=$lutram FF=$ff BRAM=$bram DSP=$dsp (${elapsed_s}s)"
done

{
  printf '%-16s %8s %8s %8s %6s %5s\n' kernel LUT LUTRAM FF BRAM DSP
  for f in "$reports"/*.txt; do
    [[ $(basename "$f") == summary.txt ]] && continue
    name=$(basename "$f" .txt)
    get() { awk -v key="$1" '$1 == key { print $2; exit }' "$f"; }
    printf '%-16s %8s %8s %8s %6s %5s\n' "$name" "$(get LUT)" "$(get LUTRAM)" "$(get FF)" "$(get BRAM)" "$(get DSP)"
  done
} > "$reports/summary.txt"
cat "$reports/summary.txt"
