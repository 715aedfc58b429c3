#!/usr/bin/env bash
# CMAKE_ARGS for building llama-cpp-python (llama.cpp) on this machine.
# On x86_64 we build for the CPU's own vector extensions but never AMX: llama.cpp's AMX matmul kernel
# segfaults on Gemma 3 (seen on this project's machines: SIGSEGV in ggml_backend_amx_mul_mat), and
# -march=native would turn it on wherever the CPU has AMX. Other architectures keep llama.cpp's defaults.
set -eu
[ "$(uname -m)" = x86_64 ] || exit 0
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { case " $flags " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
onoff() { if has "$2"; then args="$args -D$1=ON"; else args="$args -D$1=OFF"; fi; }
onoff GGML_AVX avx
onoff GGML_AVX2 avx2
onoff GGML_FMA fma
onoff GGML_F16C f16c
onoff GGML_BMI2 bmi2
onoff GGML_AVX_VNNI avx_vnni
onoff GGML_AVX512 avx512f
onoff GGML_AVX512_VBMI avx512vbmi
onoff GGML_AVX512_VNNI avx512_vnni
onoff GGML_AVX512_BF16 avx512_bf16
echo "$args"
