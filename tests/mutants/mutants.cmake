# Mutation tests (docs/sim.md), included by tests/sim/CMakeLists.txt once the simulator's targets
# exist. `make mutants` builds one tally-sim per mutant (run.sh, TALLY_MUTANT); here, for CTest,
# the core is built once more with every mutant selectable at start-up, and a fast subset runs
# under the label `mutants`.
if(TARGET tally_raft AND TARGET tally_sim_objects AND NOT TALLY_MUTANT)
  get_target_property(_raft_sources tally_raft SOURCES)
  get_target_property(_raft_dir tally_raft SOURCE_DIR)
  list(TRANSFORM _raft_sources PREPEND "${_raft_dir}/")
  add_library(tally_raft_mutable STATIC ${_raft_sources})
  target_compile_definitions(tally_raft_mutable PRIVATE TALLY_MUTANT_RUNTIME)
  target_link_libraries(tally_raft_mutable PUBLIC tally_common)

  add_executable(tally-sim-mutants ${CMAKE_CURRENT_LIST_DIR}/../sim/main.cc $<TARGET_OBJECTS:tally_sim_objects>)
  target_link_libraries(tally-sim-mutants PRIVATE tally_raft_mutable tally_simcheck tally_crdt tally_common)

  # The fast subset: mutants the simulator catches within a few seeds (bounds from the catalogue).
  foreach(_m read_without_round:200 reads_never_released:200 learners_in_quorum:200 concurrent_conf_changes:200
             restart_votes_at_once:1000)
    string(REPLACE ":" ";" _pair ${_m})
    list(GET _pair 0 _name)
    list(GET _pair 1 _seeds_max)
    add_test(NAME mutant_${_name} COMMAND tally-sim-mutants --seeds ${_seeds_max} --mutant ${_name} --expect-violation)
    set_tests_properties(mutant_${_name} PROPERTIES LABELS "sim;mutants" TIMEOUT 240
                         PASS_REGULAR_EXPRESSION "mutant ${_name} caught after")
  endforeach()
endif()
