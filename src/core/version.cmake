# Run at build time (cmake -P): writes version.hpp with the current git
# commit, touching the file only when the text changes, so a new commit shows
# in `moelab --version` without reconfiguring and nothing rebuilds needlessly.
set(MOELAB_GIT_COMMIT "unknown")
execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY ${SOURCE_DIR}
  OUTPUT_VARIABLE _commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
if(_rc EQUAL 0)
  set(MOELAB_GIT_COMMIT "${_commit}")
  execute_process(COMMAND git status --porcelain --untracked-files=no WORKING_DIRECTORY ${SOURCE_DIR}
    OUTPUT_VARIABLE _dirty OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(_dirty)
    set(MOELAB_GIT_COMMIT "${MOELAB_GIT_COMMIT}-dirty")
  endif()
endif()
configure_file(${INPUT} ${OUTPUT}.tmp @ONLY)
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUTPUT}.tmp)
