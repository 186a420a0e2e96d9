# Sourced by scripts/stage-runtime.sh and benchmarks/gpu/make-bundle.sh: the shared libraries a staged
# binary takes from the machine that runs it rather than from its bundle — glibc's (they must match that
# machine's loader) and the GPU driver's libcuda (it belongs to the installed driver).
is_system_lib() {
  case $1 in
    linux-vdso.so* | ld-linux*.so* | libc.so.* | libm.so.* | libmvec.so.* | libpthread.so.* | libdl.so.* | \
      librt.so.* | libresolv.so.* | libutil.so.* | libanl.so.* | libnss_*.so.* | libthread_db.so.* | \
      libcuda.so* | libnvidia-*.so*) return 0 ;;
  esac
  return 1
}
