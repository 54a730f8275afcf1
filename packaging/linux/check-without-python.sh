#!/bin/sh
# Run a built Vision Studio folder inside a minimal root filesystem that holds no Python:
# the folder itself, /bin/sh, env and the two tools the launcher uses, the system libraries its
# ELF files link against (as ldd resolves them on this machine), fonts and /etc/fonts.
# Then, chrooted there (needs root; run in a private mount namespace): --version,
# studio-cli --help and --self-test offscreen, each timed.
#   sudo packaging/linux/check-without-python.sh dist/vision-studio-cpu [ROOT_FOLDER]
set -eu
app=$(readlink -f "$1")
root=${2:-$(mktemp -d /tmp/studio-nopython.XXXXXX)}
mkdir -p "$root/app" "$root/bin" "$root/tmp" "$root/home" "$root/proc" "$root/dev" "$root/etc"
chmod 1777 "$root/tmp"
cp -a "$app/." "$root/app/"
copy() {  # a file and the path it is found under (symlinks resolved)
    [ -e "$1" ] || return 0
    mkdir -p "$root$(dirname "$1")"
    cp -L "$1" "$root$1"
}
for tool in sh env dirname readlink; do
    cp -L "$(command -v "$tool")" "$root/bin/$tool"
done
# every library any ELF file of the bundle or the tools needs, from this system
{ find "$root/app" -type f \( -name '*.so*' -o -perm -u+x \); ls "$root"/bin/*; } |
while read -r f; do
    head -c 4 "$f" 2>/dev/null | grep -q ELF || continue
    ldd "$f" 2>/dev/null | awk '/=> \// {print $3} /^\t\/lib/ {print $1}'
done | sort -u | grep -v "^$root" > "$root/.wanted"
# CUDA libraries of this machine stay out: the CPU build must not lean on them, and the
# GPU build brings its own (only the driver's libcuda comes from the system, at run time)
grep -v -i -e cuda -e nvidia "$root/.wanted" > "$root/.libs" || true
grep -i -e cuda -e nvidia "$root/.wanted" | sed 's/^/not copied (CUDA): /' || true
while read -r lib; do copy "$lib"; done < "$root/.libs"
for d in /etc/fonts /usr/share/fonts/truetype/dejavu; do
    [ -d "$d" ] && mkdir -p "$root$d" && cp -a "$d/." "$root$d/"
done
if find "$root" -name 'python*' -path '*bin*' | grep -q . || \
   find "$root" -name 'libpython*' -not -path "$root/app/*" | grep -q .; then
    echo "error: a Python found outside the application folder" >&2; exit 1
fi
echo "root: $root ($(du -sh "$root" | cut -f1)); system libraries copied: $(wc -l < "$root/.libs")"
unshare -m sh -c "
    mount -t proc proc '$root/proc' && mount --rbind /dev '$root/dev' &&
    for args in '/app/vision-studio --version' '/app/studio-cli --help' \
                '/app/vision-studio --self-test'; do
        echo \"== \$args\"
        start=\$(date +%s%N)
        chroot '$root' /bin/sh -c \"env -i HOME=/home PATH=/bin QT_QPA_PLATFORM=offscreen \$args\" \
            > '$root/.out' 2>&1 && code=0 || code=\$?
        tail -15 '$root/.out'
        echo \"exit \$code in \$(( (\$(date +%s%N) - start) / 1000000 )) ms\"
    done"
