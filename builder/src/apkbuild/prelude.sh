# apkbuild's shell prelude, sourced by busybox ash before the APKBUILD: abuild's helper
# functions, default phases and default split functions. The behaviour follows abuild
# 3.17's abuild.in (file for file, variable for variable); the code is our own.
# The caller exports startdir srcdir pkgbasedir tmpdir repo CARCH CBUILD CHOST CTARGET
# CBUILD_ARCH CTARGET_ARCH CLIBC JOBS and the default.conf flags before this.

msg() { printf '>>> %s: %s\n' "${subpkgname:-${pkgname:-apkbuild}}" "$1" >&2; }
msg2() { printf '    %s\n' "$1" >&2; }
warning() { printf '>>> WARNING: %s: %s\n' "${subpkgname:-${pkgname:-apkbuild}}" "$1" >&2; }
warning2() { printf '             %s\n' "$1" >&2; }
error() { printf '>>> ERROR: %s: %s\n' "${subpkgname:-${pkgname:-apkbuild}}" "$1" >&2; }
error2() { printf '           %s\n' "$1" >&2; }
die() { error "$@"; exit 1; }

# --- lists and predicates -------------------------------------------------------------

# list_has NEEDLE WORD...: NEEDLE is a word; a `!NEEDLE` word before it says no.
list_has() {
	local __needle="$1" __w
	shift
	for __w; do
		[ "$__needle" = "$__w" ] && return 0
		[ "$__needle" = "!$__w" ] && return 1
	done
	return 1
}

# Like list_has, comparing names only (versions dropped from the words).
deplist_has() {
	local __needle="$1" __w
	shift
	for __w; do
		__w=${__w%%[<>=~]*}
		[ "$__needle" = "$__w" ] && return 0
		[ "$__needle" = "!$__w" ] && return 1
	done
	return 1
}

# An option for the package being made: `sub::opt` for one subpackage, or `opt`.
options_has() {
	list_has "${subpkgname:-$pkgname}::$1" $options || list_has "$1" $options
}
depends_has() { deplist_has "$1" $depends; }
makedepends_has() { deplist_has "$1" $makedepends; }
install_has() { list_has "$1" $install; }

subpackages_has() {
	local __s
	for __s in $subpackages; do
		[ "$1" = "${__s%%:*}" ] && return 0
	done
	return 1
}

# Whether a subpackage's name ends in -TYPE (dev, doc, static, dbg…).
subpackage_types_has() {
	local __s __n
	for __s in $subpackages; do
		__n=${__s%%:*}
		[ "$1" = "${__n##*-}" ] && return 0
	done
	return 1
}

triggers_has() {
	local __t
	for __t in $triggers; do
		[ "$1" = "${__t%=*}" ] && return 0
	done
	return 1
}

source_has() {
	local __s
	for __s in $source; do
		[ "$1" = "${__s##*/}" ] && return 0
		[ "$1" = "${__s%%::*}" ] && return 0
	done
	return 1
}

is_function() {
	case "$(type "$1" 2>&1)" in
	*function*) return 0 ;;
	esac
	return 1
}

is_remote() {
	case "${1#*::}" in
	http://*|https://*|ftp://*) return 0 ;;
	esac
	return 1
}

# The file name a source entry is saved under: `name::url` gives name, else the last
# path component.
filename_from_uri() {
	local __f="${1%%::*}"
	printf '%s\n' "${__f##*/}"
}

cross_creating() { [ "$CHOST" != "$CTARGET" ]; }
cross_compiling() { [ "$CBUILD" != "$CHOST" ]; }
want_check() {
	cross_compiling && return 1
	options_has '!check' && return 1
	return 0
}

# --- fetch and unpack (for recipes that define their own unpack()) ------------------

default_fetch() { :; }
fetch() { default_fetch; }

# The sources are in $srcdir already (fetched and verified by apkbuild); unpack the
# archives among them as abuild's default_unpack does.
default_unpack() {
	local __u __s
	mkdir -p "$srcdir"
	for __u in $source; do
		__s="$srcdir/$(filename_from_uri "$__u")"
		case "$__s" in
		*.tar) tar -C "$srcdir" -xf "$__s" ;;
		*.tar.gz|*.tgz) gunzip -c "$__s" | tar -C "$srcdir" -x ;;
		*.tar.bz2) bunzip2 -c "$__s" | tar -C "$srcdir" -x ;;
		*.tar.lz) tar -C "$srcdir" --lzip -xf "$__s" ;;
		*.tar.lzma) unlzma -c "$__s" | tar -C "$srcdir" -x ;;
		*.tar.xz) unxz -c "$__s" | tar -C "$srcdir" -x ;;
		*.tar.zst) tar -C "$srcdir" --zstd -xf "$__s" ;;
		*.zip) unzip -n -q "$__s" -d "$srcdir" ;;
		*) continue ;;
		esac || return 1
	done
}

# --- default phases ---------------------------------------------------------------------

have_patches() {
	local __s
	for __s in $source; do
		case ${__s%::*} in
		*.patch|*.patch.gz|*.patch.xz) return 0 ;;
		esac
	done
	return 1
}

# Applies one patch from stdin. `patch` as abuild does; where the machine has no `patch`
# (a fresh machine with only a compiler and git), `git apply`, which works outside a
# repository and takes the same -pN; where it has neither (a bare Alpine root: busybox
# has no patch applet), the strict awk applier below.
_apply_patch() {
	if command -v patch >/dev/null 2>&1; then
		patch $patch_args_cfg ${patch_args:--p1}
	elif command -v git >/dev/null 2>&1; then
		git apply --whitespace=nowarn ${patch_args:--p1}
	else
		msg2 "no patch or git here: applying it with apkbuild's built-in applier"
		_apply_patch_awk
	fi
}

# A unified diff from stdin applied with awk alone. Strict where patch is lenient: every
# hunk's context must match exactly (it may sit at another line than its header says);
# otherwise nothing is written and it fails, saying to install patch. Files keep their
# inode and mode; `/dev/null` creates and deletes files.
_apply_patch_awk() {
	local __a __strip=1
	for __a in $patch_args_cfg ${patch_args:--p1}; do
		case "$__a" in -p[0-9]*) __strip=${__a#-p} ;; esac
	done
	awk -v strip="$__strip" "$_APPLY_AWK"
}

_APPLY_AWK='
function q(s) { gsub(/'"'"'/, "'"'"'\\'"'"''"'"'", s); return "'"'"'" s "'"'"'" }
function name(line,   f, i, n) {
	f = substr(line, 5); sub(/\t.*/, "", f)
	if (f == "/dev/null") return f
	for (i = 0; i < strip; i++) { n = index(f, "/"); if (!n) return f; f = substr(f, n + 1) }
	return f
}
function fail(why) { if (!failed) print "apply: " why ": install patch (add it to makedepends)" > "/dev/stderr"; failed = 1 }
function open_file(f,   l, r) {
	norig = 0; pos = 1; nout = 0; cur = f
	if (oldname == "/dev/null") return
	# A missing file is created by hunks that add to an empty one (diff -N).
	while ((r = (getline l < f)) > 0) orig[++norig] = l
	close(f)
}
function finish(   i, tmp) {
	if (cur == "") return
	while (pos <= norig) out[++nout] = orig[pos++]
	tmp = cur ".apkbuild-patch"
	n_staged++; staged[n_staged] = cur; deleted[n_staged] = (newname == "/dev/null")
	printf "" > tmp
	for (i = 1; i <= nout; i++) print out[i] > tmp
	close(tmp)
	cur = ""
}
function matches(p,   i) {
	if (p < pos || p + nold - 1 > norig) return 0
	for (i = 1; i <= nold; i++) if (orig[p + i - 1] != hold[i]) return 0
	return 1
}
function apply_hunk(   want, d, p, i) {
	want = (nold == 0) ? ostart + 1 : ostart
	p = 0
	for (d = 0; d <= norig + 1 && !p; d++) {
		if (matches(want - d)) p = want - d
		else if (matches(want + d)) p = want + d
	}
	if (!p) { fail(cur ": a hunk at line " ostart " does not match"); return }
	while (pos < p) out[++nout] = orig[pos++]
	for (i = 1; i <= nnew; i++) out[++nout] = hnew[i]
	pos = p + nold
}
inhunk && (substr($0, 1, 1) == " " || $0 == "") {
	hold[++nold] = substr($0, 2); hnew[++nnew] = substr($0, 2); rold--; rnew--
	if (rold <= 0 && rnew <= 0) { inhunk = 0; apply_hunk() }
	next
}
inhunk && substr($0, 1, 1) == "-" {
	hold[++nold] = substr($0, 2); rold--
	if (rold <= 0 && rnew <= 0) { inhunk = 0; apply_hunk() }
	next
}
inhunk && substr($0, 1, 1) == "+" {
	hnew[++nnew] = substr($0, 2); rnew--
	if (rold <= 0 && rnew <= 0) { inhunk = 0; apply_hunk() }
	next
}
/^\\ No newline/ { fail("a file without a final newline"); next }
/^--- / { finish(); oldname = name($0); next }
/^\+\+\+ / {
	newname = name($0)
	open_file(newname == "/dev/null" ? oldname : newname)
	next
}
/^@@ / {
	split($2, o, ","); split($3, n, ",")
	ostart = substr(o[1], 2) + 0; rold = (2 in o) ? o[2] + 0 : 1
	rnew = (2 in n) ? n[2] + 0 : 1
	nold = 0; nnew = 0; inhunk = (rold > 0 || rnew > 0)
	if (!inhunk) apply_hunk()
	next
}
END {
	finish()
	if (inhunk) fail("the patch ends inside a hunk")
	for (i = 1; i <= n_staged; i++) {
		tmp = q(staged[i] ".apkbuild-patch"); f = q(staged[i])
		if (failed) cmd = "rm -f " tmp
		else if (deleted[i]) cmd = "rm -f " tmp " " f
		else cmd = "d=$(dirname " f "); mkdir -p \"$d\" && cat " tmp " > " f " && rm -f " tmp
		if (system(cmd) != 0) failed = 1
	}
	exit failed
}'

default_prepare() {
	local __s __failed=
	mkdir -p "$tmpdir" "$GOTMPDIR"
	[ -n "$builddir" ] && [ -d "$builddir" ] && cd "$builddir"
	have_patches || return 0
	[ -d "$builddir" ] || { error "Is \$builddir set correctly?"; return 1; }
	for __s in $source; do
		case ${__s%::*} in
		*.patch)
			msg "${__s%::*}"
			_apply_patch <"$srcdir/$(filename_from_uri "$__s")" || __failed="$__failed $__s"
			;;
		*.patch.gz)
			msg "${__s%::*}"
			gunzip -c "$srcdir/$(filename_from_uri "$__s")" | _apply_patch || __failed="$__failed $__s"
			;;
		*.patch.xz)
			msg "${__s%::*}"
			unxz -c "$srcdir/$(filename_from_uri "$__s")" | _apply_patch || __failed="$__failed $__s"
			;;
		esac
	done
	[ -z "$__failed" ] && return 0
	error "The following patches failed to apply:"
	for __s in $__failed; do
		printf '  %s\n' "$__s" >&2
	done
	return 1
}
prepare() { default_prepare; }
build() { :; }
default_check() {
	warning "APKBUILD does not run any tests!"
	msg2 "To fix, either define a check() function, or declare !check in \$options to indicate the package does not have a testsuite."
}
check() { default_check; }

# abuild's helpers that refresh config.sub/config.guess copy abuild's own files, which
# exist where abuild is installed (an Alpine build root).
update_config_sub() { _update_config config.sub; }
update_config_guess() { _update_config config.guess; }
_update_config() {
	local __new="/usr/share/abuild/$1" __f __changed=1
	[ -f "$__new" ] || die "update_${1#config.}: $__new is missing: build with --rootbld in a root that has abuild"
	for __f in $(find . -name "$1"); do
		msg "Updating $__f"
		cp "$__new" "$__f" || return 1
		__changed=0
	done
	return $__changed
}

# --- splitting ------------------------------------------------------------------------

# amove PATTERN...: moves what each pattern (relative to $pkgdir, leading and trailing
# slashes ignored, globs expanded) names into the same place under $subpkgdir. Every
# pattern that matches is moved; the status is 1 when any pattern matched nothing.
amove() {
	[ -n "$subpkgdir" ] || return 1
	local __back="$(pwd -L)" __rc=0 __p __f __d IFS=''
	cd "$pkgdir" || return 1
	for __p; do
		while [ "${__p#/}" != "$__p" ]; do __p=${__p#/}; done
		for __f in $__p; do
			if ! [ -e "$__f" ] && ! [ -L "$__f" ]; then
				__rc=1
				continue
			fi
			while [ "${__f%/}" != "$__f" ]; do __f=${__f%/}; done
			__d=${__f%/*}
			[ "$__d" = "$__f" ] && __d=.
			mkdir -p "$subpkgdir/$__d"
			mv "$__f" "$subpkgdir/$__d/"
			rmdir -p "$__d" 2>/dev/null || :
		done
	done
	cd "$__back"
	return $__rc
}

# Whether FILE starts with the ELF magic and is of e_type 3 (ET_DYN: shared objects and
# PIE executables), read with od as scanelf -E ET_DYN would.
_is_elf_dyn() {
	[ -f "$1" ] && ! [ -L "$1" ] || return 1
	case "$(od -A n -t x1 -N 18 "$1" 2>/dev/null | tr -d ' \n')" in
	7f454c46????????????????????????0300|7f454c46????????????????????????0003) return 0 ;;
	esac
	return 1
}

default_dbg() {
	local __src __dst __ino __tmp __seen="$pkgbasedir/.dbg-tmp"
	depends=
	pkgdesc="$pkgdesc (debug symbols)"
	command -v objcopy >/dev/null 2>&1 || die "default_dbg needs objcopy: install binutils (add it to makedepends)"
	mkdir -p "$__seen"
	find "$pkgbasedir" -mindepth 2 -type f ! -path "$pkgbasedir/.*" | sort | while read -r __src; do
		_is_elf_dyn "$__src" || continue
		__dst="$subpkgdir/usr/lib/debug/${__src#"$pkgbasedir"/*/}.debug"
		mkdir -p "${__dst%/*}"
		__ino=$(stat -c %i "$__src")
		[ -e "$__seen/$__ino" ] && continue
		__tmp="$__seen/${__src##*/}"
		${CROSS_COMPILE}objcopy --only-keep-debug "$__src" "$__dst"
		${CROSS_COMPILE}objcopy --add-gnu-debuglink="$__dst" --strip-unneeded -R .comment "$__src" "$__tmp"
		cat "$__tmp" > "$__src"
		rm "$__tmp"
		ln "$__dst" "$__seen/$__ino"
	done
	rm -r "$__seen"
	return 0
}
dbg() { default_dbg; }

default_doc() {
	local __d __inode __name __prev_inode= __prev_name=
	depends="$depends_doc"
	pkgdesc="$pkgdesc (documentation)"
	install_if="docs $pkgname=$pkgver-r$pkgrel"
	for __d in doc man info html sgml licenses gtk-doc ri help; do
		amove "usr/share/$__d" || :
	done
	# Compress man pages (gzip -n: no name or time stamp); links to a page, and further
	# hard links of the same page, become symlinks to its .gz.
	if [ -d "$subpkgdir/usr/share/man" ]; then
		find "$subpkgdir/usr/share/man" \( -type f -o -type l \) \
			\( -name '*.[0-9n]' -o -name '*.[0-9n][a-z]*' \) \
			! \( -name '*.gz' -o -name '*.bz2' -o -name '*.xz' \) \
			-exec stat -c '%i %n' {} + | sort | while read -r __inode __name; do
			if [ -L "$__name" ]; then
				ln -s "$(readlink "$__name").gz" "$__name.gz"
			elif [ "$__inode" = "$__prev_inode" ]; then
				ln -s "${__prev_name##*/}.gz" "$__name.gz"
			else
				gzip -n -9 -k "$__name"
				__prev_name=$__name
				__prev_inode=$__inode
			fi
			rm "$__name"
		done
	fi
	rm -f "$subpkgdir/usr/share/info/dir"
}
doc() { default_doc; }

default_dev() {
	local __i __libdirs=usr/
	depends="$depends_dev"
	pkgdesc="$pkgdesc (development files)"
	cd "$pkgdir" || return 0
	[ -d lib/ ] && __libdirs="lib/ $__libdirs"
	for __i in usr/include usr/lib/pkgconfig usr/share/pkgconfig \
			usr/share/aclocal usr/share/gettext \
			usr/bin/*-config usr/share/vala/vapi \
			usr/share/gir-[0-9]* usr/share/qt*/mkspecs \
			usr/lib/qt*/mkspecs usr/lib/cmake usr/share/cmake \
			usr/lib/glade/modules usr/share/glade/catalogs \
			$(find . -name include -type d) \
			$(subpackage_types_has static || find $__libdirs -name '*.a' 2>/dev/null) \
			$(find $__libdirs -name '*.[cho]' -o -name '*.prl' 2>/dev/null); do
		if [ -e "$pkgdir/$__i" ] || [ -L "$pkgdir/$__i" ]; then
			amove "$__i"
		fi
	done
	# The unversioned .so links are what the linker needs: they go with the headers.
	for __i in lib/*.so usr/lib/*.so; do
		[ -L "$__i" ] && amove "$__i"
	done
	return 0
}
dev() { default_dev; }

default_static() {
	local __dev __libdirs=usr/lib
	if [ -z "$depends_static" ]; then
		__dev="${subpkgname%-libs-static}"
		__dev="${__dev%-static}-dev"
		subpackages_has "$__dev" && depends_static="$__dev"
	fi
	depends="$depends_static"
	pkgdesc="$pkgdesc (static library)"
	cd "$pkgdir" || return 0
	[ -d lib/ ] && __libdirs="lib/ $__libdirs"
	amove $(find $__libdirs -name '*.a')
	return 0
}
static() { default_static; }

default_libs() {
	depends="$depends_libs"
	pkgdesc="$pkgdesc (libraries)"
	amove 'lib/lib*.so.[0-9]*' 'usr/lib/lib*.so.[0-9]*' || :
}
libs() { default_libs; }

default_openrc() {
	depends="$depends_openrc"
	pkgdesc="$pkgdesc (OpenRC init scripts)"
	install_if="openrc ${subpkgname%-openrc}=$pkgver-r$pkgrel"
	amove etc/conf.d etc/init.d etc/user/conf.d etc/user/init.d || :
}
openrc() { default_openrc; }

default_systemd() {
	depends="$depends_systemd"
	pkgdesc="$pkgdesc (systemd files)"
	install_if="systemd ${subpkgname%-systemd}=$pkgver-r$pkgrel"
	amove usr/lib/systemd || :
}
systemd() { default_systemd; }

default_udev() {
	depends="$depends_udev"
	pkgdesc="$pkgdesc (udev rules)"
	install_if="udev ${subpkgname%-udev}=$pkgver-r$pkgrel"
	amove usr/lib/udev || :
}
udev() { default_udev; }

default_devhelp() {
	depends=""
	pkgdesc="$pkgname - devhelp files"
	install_if="$pkgname=$pkgver-r$pkgrel devhelp"
	amove usr/share/devhelp
}
devhelp() { default_devhelp; }

default_bashcomp() {
	depends=""
	pkgdesc="Bash completions for $pkgname"
	install_if="${subpkgname%-bash-completion}=$pkgver-r$pkgrel bash-completion"
	amove usr/share/bash-completion/completions
}
bashcomp() { default_bashcomp; }

default_zshcomp() {
	depends=""
	pkgdesc="Zsh completions for $pkgname"
	install_if="${subpkgname%-zsh-completion}=$pkgver-r$pkgrel zsh"
	amove usr/share/zsh/site-functions
}
zshcomp() { default_zshcomp; }

default_fishcomp() {
	depends=""
	pkgdesc="Fish completions for $pkgname"
	install_if="${subpkgname%-fish-completion}=$pkgver-r$pkgrel fish"
	amove usr/share/fish/vendor_completions.d || :
	if amove usr/share/fish/completions; then
		warning "fish completions for programs should be in /usr/share/fish/vendor_completions.d"
	fi
	return 0
}
fishcomp() { default_fishcomp; }

default_pyc() {
	local IFS='
'
	depends=
	pkgdesc="Precompiled Python bytecode for ${subpkgname%-pyc}"
	install_if="${subpkgname%-pyc}=$pkgver-r$pkgrel pyc"
	cd "$pkgdir" || return 1
	amove $(find usr/lib/python* -type d -name __pycache__)
}
pyc() { default_pyc; }

default_nftrules() {
	depends=
	pkgdesc="$pkgdesc (nftables ruleset)"
	install_if="nftables-rulesets ${subpkgname%-nftrules}=$pkgver-r$pkgrel"
	amove 'usr/share/nftables.avail/*.nft' || :
}
nftrules() { default_nftrules; }

default_lang() {
	pkgdesc="Languages for package $pkgname"
	install_if="$pkgname=$pkgver-r$pkgrel lang"
	depends="$depends_lang"
	amove ${langdir:-/usr/share/locale}
}
lang() { default_lang; }
