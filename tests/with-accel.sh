#!/bin/sh
# with-accel.sh CMD...: run CMD with LIBGUESTFS_BACKEND_SETTINGS=force_tcg
# where KVM is unusable (see accel-env.sh), unless the caller set it.
if [ -z "${LIBGUESTFS_BACKEND_SETTINGS+x}" ] &&
   [ "$(sh "$(dirname "$0")/accel-env.sh")" = force_tcg ]; then
  LIBGUESTFS_BACKEND_SETTINGS=force_tcg
  export LIBGUESTFS_BACKEND_SETTINGS
fi
exec "$@"
