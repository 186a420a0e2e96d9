# Regenerates the CRC32C matrices into OUT (verifying them on random items) and compares with the
# checked-in copy; run by the hw_crc32c_matrices_fresh test.
execute_process(COMMAND ${PYTHON} ${GEN} --out ${OUT} --check 200 RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gen_crc32c_matrices.py failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT} ${CHECKED_IN} RESULT_VARIABLE diff)
if(NOT diff EQUAL 0)
  message(FATAL_ERROR "hw/rtl/crc32c_matrices.svh is stale: run hw/gen/gen_crc32c_matrices.py")
endif()
