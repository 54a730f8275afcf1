#!/bin/sh
# Add Vision Studio to the desktop's application menu and put `studio` and `studio-cli` on
# the PATH (~/.local/bin), for the current user, pointing at this folder. Run it again
# after moving the folder; `--remove` takes the entry and the links away.
set -eu
here=$(dirname "$(readlink -f "$0")")
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
bin="$HOME/.local/bin"
if [ "${1:-}" = "--remove" ]; then
    rm -f "$apps/vision-studio.desktop" "$bin/studio" "$bin/studio-cli" "$bin/vision-studio"
    echo "Vision Studio's menu entry and links removed"
    exit 0
fi
mkdir -p "$apps" "$bin"
sed "s|@APPDIR@|$here|g" "$here/vision-studio.desktop.in" > "$apps/vision-studio.desktop.tmp"
mv "$apps/vision-studio.desktop.tmp" "$apps/vision-studio.desktop"
ln -sf "$here/vision-studio" "$bin/vision-studio"
ln -sf "$here/vision-studio" "$bin/studio"
ln -sf "$here/studio-cli" "$bin/studio-cli"
echo "Vision Studio added to the application menu; 'studio' and 'studio-cli' are in $bin"
