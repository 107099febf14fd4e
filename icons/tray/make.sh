#!/usr/bin/env bash
# Regenerates the tray's state icons from the app icon (ImageMagick): all good, something
# needs attention (a red badge), all syncs paused (grey with a pause badge).
set -euo pipefail
cd "$(dirname "$0")"
convert ../64x64.png PNG32:ok.png
convert ../64x64.png \( -size 64x64 xc:none -fill '#b3261e' -stroke white -strokewidth 4 \
  -draw 'circle 48,48 48,32' \) -composite PNG32:attention.png
convert ../64x64.png -colorspace Gray -alpha on \( -size 64x64 xc:none -fill '#444444' \
  -stroke white -strokewidth 3 -draw 'roundrectangle 34,34 62,62 4,4' -stroke none -fill white \
  -draw 'rectangle 41,40 45,56' -draw 'rectangle 51,40 55,56' \) -composite PNG32:paused.png
