# apkbuild's shell prelude: abuild's helper functions and default phases, sourced before the
# APKBUILD (behaviour follows abuild's abuild.in and functions.sh; written for POSIX sh).
# The caller sets startdir srcdir pkgbasedir CARCH CBUILD CHOST CTARGET JOBS before this.

msg() { printf '>>> %s: %s\n' "${subpkgname:-${pkgname:-apkbuild}}" "$*" >&2; }
msg2() { printf '    %s\n' "$*" >&2; }
warning() { printf '>>> WARNING: %s: %s\n' "${subpkgname:-${pkgname:-apkbuild}}" "$*" >&2; }
warning2() { printf '    %s\n' "$*" >&2; }
error() { printf '>>> ERROR: %s: %s\n' "${subpkgname:-${pkgname:-apkbuild}}" "$*" >&2; }
error2() { printf '    %s\n' "$*" >&2; }
die() { error "$@"; exit 1; }

# The file name a source entry is saved under: `name::url` gives name, else the last
# path component of the URL.
filename_from_uri() {
	local uri="$1"
	local filename="${uri##*/}"
	case "$uri" in
	*::*) filename=${uri%%::*};;
	esac
	printf '%s\n' "$filename"
}

have_patches() {
	local i
	for i in $source; do
		case ${i%::*} in
		*.patch|*.patch.gz|*.patch.xz) return 0;;
		esac
	done
	return 1
}

# Applies one patch from stdin. `patch` as abuild does; where the machine has no `patch`
# (a fresh machine with only a compiler and git), `git apply`, which works outside a
# repository and takes the same -pN.
_apply_patch() {
	if command -v patch >/dev/null 2>&1; then
		patch ${patch_args:--p1}
	elif command -v git >/dev/null 2>&1; then
		git apply --whitespace=nowarn ${patch_args:--p1}
	else
		error "neither patch nor git is installed: install patch (apt-get install patch / apk add patch)"
		return 1
	fi
}

default_prepare() {
	local i failed=
	[ -n "$builddir" ] && [ -d "$builddir" ] && cd "$builddir"
	if ! have_patches; then
		return 0
	fi
	[ -d "$builddir" ] || { error "Is \$builddir set correctly?"; return 1; }
	for i in $source; do
		case ${i%::*} in
		*.patch)
			msg "${i%::*}"
			_apply_patch <"$srcdir/$(filename_from_uri "$i")" || failed="$failed $i"
			;;
		*.patch.gz)
			msg "${i%::*}"
			gunzip -c "$srcdir/$(filename_from_uri "$i")" | _apply_patch || failed="$failed $i"
			;;
		*.patch.xz)
			msg "${i%::*}"
			unxz -c "$srcdir/$(filename_from_uri "$i")" | _apply_patch || failed="$failed $i"
			;;
		esac
	done
	if [ -z "$failed" ]; then
		return 0
	fi
	error "The following patches failed to apply:"
	for i in $failed; do
		printf '  %s\n' "$i" >&2
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

# Moves files matching the patterns (relative to $pkgdir) into $subpkgdir.
amove() {
	[ -n "$subpkgdir" ] || return 1
	local d f pattern
	d="$(pwd -L)"
	cd "$pkgdir" || return 1
	for pattern; do
		for f in ${pattern#/}; do
			[ -e "$f" ] || [ -L "$f" ] || { error "amove: $pattern: no such file"; cd "$d"; return 1; }
			if [ "${f%/*}" != "$f" ]; then
				mkdir -p "$subpkgdir/${f%/*}"
			else
				mkdir -p "$subpkgdir"
			fi
			mv "$pkgdir/$f" "$subpkgdir/${f%/*}/" 2>/dev/null || mv "$pkgdir/$f" "$subpkgdir/"
			rmdir -p "${f%/*}" 2>/dev/null || true
		done
	done
	cd "$d"
}

default_doc() {
	local i
	depends="$depends_doc"
	pkgdesc="$pkgdesc (documentation)"
	install_if="docs $pkgname=$pkgver-r$pkgrel"
	for i in doc man info html sgml licenses gtk-doc ri help; do
		if [ -d "$pkgdir/usr/share/$i" ]; then
			mkdir -p "$subpkgdir/usr/share"
			mv "$pkgdir/usr/share/$i" "$subpkgdir/usr/share/"
		fi
	done
	# compress man pages (gzip -n: no name or time stamp, reproducible)
	local mandir="$subpkgdir/usr/share/man" name target
	if [ -d "$mandir" ]; then
		find "$mandir" \( -type f -o -type l \) \( -name '*.[0-9n]' -o -name '*.[0-9n][a-z]*' \) \
			! \( -name '*.gz' -o -name '*.bz2' -o -name '*.xz' \) | sort | while read -r name; do
			if [ -L "$name" ]; then
				target=$(readlink "$name")
				ln -s "$target.gz" "$name.gz"
			else
				gzip -n -9 -k "$name"
			fi
			rm "$name"
		done
	fi
	rm -f "$subpkgdir/usr/share/info/dir"
	rmdir "$pkgdir/usr/share" "$pkgdir/usr" 2>/dev/null || :
	return 0
}
doc() { default_doc; }

default_dev() {
	local i
	depends="$depends_dev"
	pkgdesc="$pkgdesc (development files)"
	cd "$pkgdir" || return 0
	local libdirs=usr/
	[ -d lib/ ] && libdirs="lib/ $libdirs"
	for i in usr/include usr/lib/pkgconfig usr/share/pkgconfig usr/share/aclocal \
			usr/share/gettext usr/bin/*-config usr/share/vala/vapi \
			usr/lib/cmake usr/share/cmake \
			$(find . -name include -type d) \
			$(find $libdirs -name '*.a' -o -name '*.[cho]' -o -name '*.prl' 2>/dev/null); do
		i=${i#./}
		if [ -e "$pkgdir/$i" ] || [ -L "$pkgdir/$i" ]; then
			mkdir -p "$subpkgdir/${i%/*}"
			mv "$pkgdir/$i" "$subpkgdir/${i%/*}/"
			rmdir "$pkgdir/${i%/*}" 2>/dev/null || :
		fi
	done
	# the *.so links are needed to link against the library: they go to -dev
	for i in lib/*.so usr/lib/*.so; do
		if [ -L "$i" ]; then
			mkdir -p "$subpkgdir/${i%/*}"
			mv "$i" "$subpkgdir/$i" || return 1
		fi
	done
	return 0
}
dev() { default_dev; }

default_openrc() {
	depends="$depends_openrc"
	pkgdesc="$pkgdesc (OpenRC init scripts)"
	install_if="openrc ${subpkgname%-openrc}=$pkgver-r$pkgrel"
	amove etc/conf.d etc/init.d etc/user/conf.d etc/user/init.d 2>/dev/null || :
}
openrc() { default_openrc; }

default_static() {
	local i
	depends=""
	pkgdesc="$pkgdesc (static library)"
	cd "$pkgdir" || return 0
	for i in $(find lib usr/lib -name '*.a' 2>/dev/null); do
		mkdir -p "$subpkgdir/${i%/*}"
		mv "$i" "$subpkgdir/$i"
	done
	return 0
}
static() { default_static; }

default_libs() {
	local i
	depends="$depends_libs"
	pkgdesc="$pkgdesc (libraries)"
	cd "$pkgdir" || return 0
	for i in lib/lib*.so.[0-9]* usr/lib/lib*.so.[0-9]*; do
		if [ -e "$i" ] || [ -L "$i" ]; then
			mkdir -p "$subpkgdir/${i%/*}"
			mv "$i" "$subpkgdir/$i"
		fi
	done
	return 0
}
libs() { default_libs; }
